#!/bin/sh
# vdiskload --backend kmod in the guest: vdisk.ko serves the image, vdiskload's serving process answers
# what the kernel cannot do. For qcow2 and vhdx: /dev/<fmt>0 is the kernel's own removable disk (no
# symlink) with the kernel's partition <fmt>0p1, hdparm -i identifies it, reading allocated data makes no
# upcalls, a file written through it is there after detach, qemu-img check and a read-only re-attach; a
# compressed qcow2 reads right through upcalls; and fio's verified random writes, with discards freeing
# clusters that other writes then reuse, leave a qcow2 and a vhdx equal to a raw image given the same I/O.
# Needs the jar built (./run-tests runs mvn verify first).
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
[ -n "$VDL_KMOD" ] || { echo "no VDL_KMOD: vmtest/run builds the module"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
fail() {
    echo "FAILED: $*"
    for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done
    dmesg | tail -n 20
    exit 1
}
insmod "$VDL_KMOD/vdisk.ko"
modprobe ext4 2>/dev/null || true
sh "$repo/testdata/disks.sh" "$PWD" > /dev/null
mkdir mnt
hash_of() { awk -v f="$1" -v p="$2" '$1 == f && $5 == p {print $6}' disks.txt; }
counter() { cat "/sys/block/$1/vdisk/$2"; }

for ext in qcow2 vhdx; do
    img=gpt-ext4.$ext
    fmt=$(awk -v f="$img" '$1 == f {print $2; exit}' disks.txt)
    dev=$(vdl --backend kmod --show "$img" | tail -n 1) || fail "attach $img"
    name=${dev#/dev/}
    [ -b "$dev" ] && [ ! -L "$dev" ] || fail "$dev is not the kernel's own block device"
    [ -b "${dev}p1" ] && [ ! -L "${dev}p1" ] || fail "no kernel partition ${dev}p1"
    [ "$(counter "$name" format)" = "$fmt" ] || fail "$name: vdisk/format $(counter "$name" format)"
    [ "$(cat "/sys/block/$name/removable")" = 1 ] || fail "$name is not removable"
    hdparm -i "$dev" > hdparm.out 2>&1 || { cat hdparm.out; fail "hdparm -i $dev"; }
    grep -q "Model=vdiskload $fmt, FwRev=" hdparm.out && grep -q "SerialNo=VDL" hdparm.out \
        || { cat hdparm.out; fail "hdparm -i $dev: no model or serial"; }
    if grep -qi "failed" hdparm.out; then cat hdparm.out; fail "hdparm -i $dev printed an error"; fi
    vdl -l > list.txt
    grep -q "^$dev  *kmod  *$dev " list.txt || { cat list.txt; fail "-l does not show $dev with backend kmod"; }

    mount -o ro "${dev}p1" mnt
    echo 3 > /proc/sys/vm/drop_caches
    up=$(counter "$name" upcalls)
    for f in hello.txt data.bin; do
        [ "$(sha256sum "mnt/$f" | cut -d' ' -f1)" = "$(hash_of "$img" "/$f")" ] || fail "$img: $f differs"
    done
    [ "$(counter "$name" upcalls)" = "$up" ] || fail "$img: reading allocated data made $(( $(counter "$name" upcalls) - up )) upcalls"
    umount mnt
    mount "${dev}p1" mnt
    echo "written through vdisk.ko to $ext" > mnt/new.txt
    head -c 3M /dev/urandom > big.bin
    cp big.bin mnt/big.bin
    umount mnt
    vdl -d "$dev" || fail "detach $dev"
    [ ! -e "$dev" ] && [ ! -e "/sys/block/$name" ] || fail "$dev still there after -d"
    qemu-img check -q -f "$fmt" "$img" || fail "qemu-img check $img"
    dev=$(vdl --backend kmod -r --show "$img" | tail -n 1) || fail "attach -r $img"
    mount -o ro "${dev}p1" mnt
    [ "$(cat mnt/new.txt)" = "written through vdisk.ko to $ext" ] || fail "$img: new.txt not there after re-attach"
    cmp big.bin mnt/big.bin || fail "$img: big.bin differs after re-attach"
    umount mnt
    vdl -d "$dev"
    echo "$ext: the kernel's $dev and ${dev}p1, identified, read with no upcalls, written, checked, re-read"
done

# A compressed qcow2: its data reads through upcalls, right.
qemu-img convert -q -c -f raw -O qcow2 gpt-ext4.raw compressed.qcow2
dev=$(vdl --backend kmod -r --show compressed.qcow2 | tail -n 1) || fail "attach compressed.qcow2"
name=${dev#/dev/}
mount -o ro "${dev}p1" mnt
[ "$(sha256sum mnt/data.bin | cut -d' ' -f1)" = "$(hash_of gpt-ext4.raw /data.bin)" ] || fail "compressed.qcow2: data.bin differs"
[ "$(counter "$name" upcalls)" -gt 0 ] || fail "compressed.qcow2 read without upcalls"
umount mnt
vdl -d "$dev"
echo "compressed qcow2: read right through $(counter "$name" upcalls 2>/dev/null || echo some) upcalls"

# Discards free clusters that other writes reuse while fio verifies: the same I/O on a raw image must
# leave the same bytes. Job "verify" writes and verifies [0, 24M) (trimming some of its blocks, which must
# then read as zeros); "churn" writes and discards in [24M, 48M), freeing clusters "verify" then gets.
cat > stale.fio <<'EOF'
[global]
ioengine=psync
direct=1
bs=4k
randrepeat=1
[verify]
offset=0
size=24M
rw=randwrite
verify=crc32c
do_verify=1
trim_percentage=20
trim_verify_zero=1
trim_backlog=8
randseed=11
[churn-write]
offset=24M
size=24M
rw=randwrite
bs=64k
randseed=12
[churn-trim]
offset=24M
size=24M
rw=randtrim
bs=128k
randseed=13
EOF
truncate -s 64M stale.raw
qemu-img create -q -f qcow2 stale.qcow2 64M
qemu-img create -q -f vhdx -o block_size=1M stale.vhdx 64M
for img in stale.raw stale.qcow2 stale.vhdx; do
    dev=$(vdl --backend kmod --show "$img" | tail -n 1) || fail "attach $img"
    fio --filename="$dev" stale.fio > "$img.fio.out" 2>&1 || { tail -n 30 "$img.fio.out"; fail "fio on $img ($dev)"; }
    # The churn jobs race each other: their region ends as zeros, for the comparison.
    blkdiscard -o 24M -l 24M "$dev" || fail "blkdiscard on $img"
    vdl -d "$dev" || fail "detach $img"
done
qemu-img check -q -f qcow2 stale.qcow2 || fail "qemu-img check stale.qcow2"
qemu-img check -q -f vhdx stale.vhdx || fail "qemu-img check stale.vhdx"
qemu-img compare -q -f raw -F qcow2 stale.raw stale.qcow2 || fail "stale.qcow2 differs from stale.raw"
qemu-img compare -q -f raw -F vhdx stale.raw stale.vhdx || fail "stale.vhdx differs from stale.raw"
echo "fio verify with discards and cluster reuse: qcow2 and vhdx equal the raw image, checks clean"

rmmod vdisk || fail "rmmod vdisk"
echo "module unloaded"
