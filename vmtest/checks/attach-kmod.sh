#!/bin/sh
# vdiskload --backend kmod in the guest: vdisk.ko serves the image, vdiskload's serving process answers
# what the kernel cannot do. For qcow2 (every format in the long run, attach-kmod-formats.sh):
# /dev/<fmt>0 is the kernel's own removable disk (no symlink) with the kernel's partition <fmt>0p1,
# hdparm -i identifies it, reading allocated data makes no upcalls, a file written through it is there
# after detach, qemu-img check and a read-only re-attach; a compressed qcow2 reads right through upcalls;
# and fio's verified random writes, with discards freeing clusters that other writes then reuse, read
# back right (no stale mapping), leave images holding what their devices served, and a qcow2 (and in the
# long run a vhdx) equal to a raw image given the same I/O.
# The fio part's images live on the scratch disk (ext4), where vdisk.ko does its file I/O direct.
#   VDL_KMOD_FORMATS (default qcow2), VDL_KMOD_STALE (default "raw qcow2"): the formats of each part.
# vmtest: scratch
set -e
. "$(dirname "$0")/../kmod-lib.sh"
kmod_load
modprobe ext4 2>/dev/null || true
sh "$repo/testdata/disks.sh" "$PWD" > /dev/null
mkdir mnt
hash_of() { awk -v f="$1" -v p="$2" '$1 == f && $5 == p {print $6}' disks.txt; }
counter() { cat "/sys/block/$1/vdisk/$2"; }

# prepare KIND: sets img (what to attach), fmt (its format), checked (the image qemu-img checks) and
# compressed (1 when its data reads through upcalls) and append_only (1 for a stream-optimized VMDK: refused
# read-write, written with --snapshot) for a kind: an extension testdata/disks.sh makes, or vmdk-flat,
# vmdk-stream, qcow2-chain (an overlay over gpt-ext4.qcow2) or layout (a JSON layout whose partition is the
# ext4 file system of gpt-ext4.raw).
prepare() {
    compressed=0 append_only=0
    case $1 in
        vmdk-flat|vmdk-stream)
            sub=monolithicFlat; [ "$1" = vmdk-stream ] && { sub=streamOptimized; compressed=1; append_only=1; }
            img=$1.vmdk; fmt=vmdk
            qemu-img convert -q -f raw -O vmdk -o subformat=$sub gpt-ext4.raw "$img" ;;
        qcow2-chain)
            img=chain-top.qcow2; fmt=qcow2
            qemu-img create -q -f qcow2 -b gpt-ext4.qcow2 -F qcow2 "$img" ;;
        layout)
            img=disk.json; fmt=vdisk-layout  # the layout format's name, as -l and the model show it
            dd if=gpt-ext4.raw of=part.raw bs=1M skip=1 count=30 status=none
            echo '{ "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "part.raw" } ] }' > "$img" ;;
        *)
            img=gpt-ext4.$1
            fmt=$(awk -v f="$img" '$1 == f {print $2; exit}' disks.txt) ;;
    esac
    checked=$img
    [ "$1" = layout ] && checked=part.raw
    return 0
}
check_image() { # qemu-img check, where the format has checks
    rc=0
    qemu-img check -q "$checked" || rc=$?
    [ $rc = 0 ] || [ $rc = 63 ] || fail "qemu-img check $checked: exit $rc"
}

for kind in ${VDL_KMOD_FORMATS:-qcow2}; do
    prepare "$kind"
    if [ $append_only = 1 ]; then
        out=$(vdl --backend kmod --show "$img" 2>&1) && fail "$img (stream-optimized) attached read-write"
        echo "$out" | grep -q -- "attach it read-only (-r) or with --snapshot" || fail "$img refused with: $out"
        dev=$(attach -r "$img")
    else
        dev=$(attach "$img")
    fi
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
        [ "$(sha256sum "mnt/$f" | cut -d' ' -f1)" = "$(hash_of gpt-ext4.raw "/$f")" ] || fail "$img: $f differs"
    done
    reads=$(( $(counter "$name" upcalls) - up ))
    if [ $compressed = 0 ]; then
        [ $reads = 0 ] || fail "$img: reading allocated data made $reads upcalls"
    else
        [ $reads -gt 0 ] || fail "$img: compressed data read without upcalls"
    fi
    umount mnt
    if [ $append_only = 1 ]; then
        vdl -d "$dev" || fail "detach $dev"
        dev=$(attach --snapshot "$img")
    fi
    mount "${dev}p1" mnt
    echo "written through vdisk.ko to $kind" > mnt/new.txt
    head -c 3M /dev/urandom > big.bin
    cp big.bin mnt/big.bin
    umount mnt
    vdl -d "$dev" || fail "detach $dev"
    [ ! -e "$dev" ] && [ ! -e "/sys/block/$name" ] || fail "$dev still there after -d"
    check_image
    dev=$(attach -r "$img")
    mount -o ro "${dev}p1" mnt
    if [ $append_only = 1 ]; then
        [ ! -e mnt/new.txt ] || fail "$img: writes through --snapshot reached the image"
    else
        [ "$(cat mnt/new.txt)" = "written through vdisk.ko to $kind" ] || fail "$img: new.txt not there after re-attach"
        cmp big.bin mnt/big.bin || fail "$img: big.bin differs after re-attach"
    fi
    umount mnt
    vdl -d "$dev"
    written=written; [ $append_only = 0 ] || written="refused read-write, written through --snapshot"
    echo "$kind: the kernel's $dev and ${dev}p1, identified, read with $reads upcalls, $written, checked, re-read"
done

# A compressed qcow2: its data reads through upcalls, right.
qemu-img convert -q -c -f raw -O qcow2 gpt-ext4.raw compressed.qcow2
dev=$(attach -r compressed.qcow2)
name=${dev#/dev/}
mount -o ro "${dev}p1" mnt
[ "$(sha256sum mnt/data.bin | cut -d' ' -f1)" = "$(hash_of gpt-ext4.raw /data.bin)" ] || fail "compressed.qcow2: data.bin differs"
[ "$(counter "$name" upcalls)" -gt 0 ] || fail "compressed.qcow2 read without upcalls"
umount mnt
vdl -d "$dev"
echo "compressed qcow2: read right through $(counter "$name" upcalls 2>/dev/null || echo some) upcalls"

# Discards free clusters that other writes reuse while fio verifies. In [0, 24M) job "verify" writes
# and verifies (crc32c: a block read through a stale mapping fails it); in [24M, 48M) "churn-write" and
# "churn-trim" write and discard, freeing clusters that "verify" then gets.
cat > stale.fio <<'END'
[global]
ioengine=psync
direct=1
randrepeat=1
[verify]
offset=0
size=24M
bs=4k
rw=randwrite
verify=crc32c
do_verify=1
verify_backlog=64
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
END
# The same with data fio writes again byte for byte (each block holds its offset; no time stamps): a raw
# image given the same I/O must end equal.
sed -e 's/^verify=crc32c$/verify=pattern\nverify_pattern=%o/' stale.fio > same.fio
run_fio() { # run_fio OUT FIO_ARGS...: fails on any error fio reports; fio 3.33 exits 0 even when a job dies of a signal
    out=$1
    shift
    fio "$@" > "$out" 2>&1 || { tail -n 30 "$out"; fail "fio $*"; }
    if grep -E "got signal|Assertion|err= *[1-9]|verify: bad|fio: .*error" "$out"; then tail -n 30 "$out"; fail "fio $*"; fi
    grep -q "issued rwts: total=[0-9]*,[1-9]" "$out" || { cat "$out"; fail "fio $* wrote nothing"; }
}
# On the scratch disk where there is one: the kernel's I/O to these files is direct there (vdisk/dio).
fio_dir=${VDL_SCRATCH:-$PWD}/fio
mkdir -p "$fio_dir"
cp stale.fio same.fio "$fio_dir"
cd "$fio_dir"
for fmt in ${VDL_KMOD_STALE:-raw qcow2}; do
    for i in stale same; do
        case $fmt in
            raw) truncate -s 64M "$i.raw" ;;
            qcow2) qemu-img create -q -f qcow2 "$i.qcow2" 64M ;;
            vhdx) qemu-img create -q -f vhdx -o block_size=1M "$i.vhdx" 64M ;;
        esac
    done
    dev=$(attach "stale.$fmt")
    if [ -n "$VDL_SCRATCH" ]; then
        [ "$(cat "/sys/block/${dev#/dev/}/vdisk/dio")" = 1 ] || fail "stale.$fmt on ext4: in-kernel I/O not direct"
    fi
    run_fio "stale.$fmt.out" --filename="$dev" stale.fio
    dd if="$dev" of="served.$fmt" bs=1M iflag=direct status=none
    vdl -d "$dev" || fail "detach stale.$fmt"
    qemu-img compare -q -f raw -F "$fmt" "served.$fmt" "stale.$fmt" || fail "stale.$fmt does not hold what its device served"
    rc=0
    [ $fmt = raw ] || qemu-img check -q -f "$fmt" "stale.$fmt" || rc=$?
    [ $rc = 0 ] || [ $rc = 63 ] || fail "qemu-img check stale.$fmt: exit $rc"
    dev=$(attach "same.$fmt")
    run_fio "same.$fmt.out" --filename="$dev" same.fio
    blkdiscard -o 24M -l 24M "$dev" || fail "blkdiscard on same.$fmt"  # the churn jobs race each other
    vdl -d "$dev" || fail "detach same.$fmt"
    [ $fmt = raw ] || qemu-img compare -q -f raw -F "$fmt" same.raw "same.$fmt" || fail "same.$fmt differs from same.raw"
done
cd - > /dev/null
rm -rf "$fio_dir"
echo "fio verify with discards and cluster reuse on ${VDL_KMOD_STALE:-raw qcow2} (${VDL_SCRATCH:+direct I/O on ext4}): no stale read, images hold what was served, checks clean, equal to raw"

rmmod vdisk || fail "rmmod vdisk"
echo "module unloaded"
