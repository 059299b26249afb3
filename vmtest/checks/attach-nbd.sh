#!/bin/sh
# vdiskload --backend nbd in the guest: for every format, attach gpt-ext4.<ext> through the kernel's nbd
# driver, mount /dev/<fmt>Np1, check the files disks.txt lists, write one, detach; qemu-img check is
# clean; attached again read-only the new file is there. Then -l, udev's naming script, and a serving
# process killed with SIGKILL: I/O fails with EIO once the dead-connection timeout (set to 10 s here) passes, -d cleans up.
# Needs the jar built (./run-tests runs mvn verify first); it is run directly, as the launcher would
# try to rebuild a stale jar and the guest's view of the repository is read-only.
# vmtest: long (about 12 minutes of guest time for the seven formats)
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
modprobe nbd
modprobe ext4 2>/dev/null || true
sh "$repo/testdata/disks.sh" "$PWD" > /dev/null
mkdir mnt
fail() { echo "FAILED: $*"; for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done; exit 1; }

hash_of() { awk -v f="$1" -v p="$2" '$1 == f && $5 == p {print $6}' disks.txt; }

for ext in raw qcow qcow2 vmdk vdi vhd vhdx; do
    img=gpt-ext4.$ext
    fmt=$(awk -v f="$img" '$1 == f {print $2; exit}' disks.txt)
    start=$(date +%s)
    out=$(vdl --backend nbd --show "$img") || fail "attach $img"
    dev=$(echo "$out" | tail -n 1)
    [ -b "${dev}p1" ] || fail "$img: no ${dev}p1 (--show said: $out)"
    kdev=$(readlink -f "$dev")
    case "$kdev" in /dev/nbd[0-9]*) ;; *) fail "$dev points at $kdev, not an nbd device" ;; esac
    mount "${dev}p1" mnt
    for f in hello.txt data.bin; do
        [ "$(sha256sum "mnt/$f" | cut -d' ' -f1)" = "$(hash_of "$img" "/$f")" ] || fail "$img: $f differs"
    done
    echo "written through nbd to $ext" > mnt/new.txt
    umount mnt
    vdl -d "$dev" || fail "detach $dev"
    [ ! -e "$dev" ] || fail "$dev still there after -d"
    rc=0; qemu-img check -q -f "$fmt" "$img" || rc=$?
    [ $rc = 0 ] || [ $rc = 63 ] || fail "qemu-img check $img: exit $rc"
    dev=$(vdl --backend nbd -r --show "$img" | tail -n 1) || fail "attach -r $img"
    mount -o ro "${dev}p1" mnt
    [ "$(cat mnt/new.txt)" = "written through nbd to $ext" ] || fail "$img: new.txt not there after re-attach"
    umount mnt
    vdl -d "$dev"
    echo "$ext: read, written, checked, re-read through $kdev in $(( $(date +%s) - start )) s"
done

# -l, the udev naming script, and a SIGKILLed serving process.
dev=$(VDISKLOAD_DEAD_TIMEOUT=10 vdl --backend nbd --show gpt-ext4.qcow2 | tail -n 1)
name=${dev#/dev/}
kname=$(basename "$(readlink -f "$dev")")
vdl -l > list.txt
grep -q "^$dev  *nbd  */dev/$kname " list.txt || { cat list.txt; fail "-l does not show $dev with backend nbd on /dev/$kname"; }
[ "$(sh "$repo/udev/vdiskload-devname" "$kname")" = "$name" ] || fail "vdiskload-devname $kname"
[ "$(sh "$repo/udev/vdiskload-devname" "${kname}p1")" = "${name}p1" ] || fail "vdiskload-devname ${kname}p1"
if sh "$repo/udev/vdiskload-devname" loop7 > /dev/null 2>&1; then fail "vdiskload-devname names a device that is not vdiskload's"; fi
echo "-l and vdiskload-devname name /dev/$kname $name"

pid=$(sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/$name.json")
tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "^@vdiskload-$name " || fail "argv[0] of the serving process: $(tr '\0' ' ' < /proc/$pid/cmdline)"
kill -9 "$pid"
start=$(date +%s)
if dd if="$dev" of=/dev/null bs=4096 count=1 skip=1000 iflag=direct 2> dd.err; then fail "a read after SIGKILL succeeded"; fi
took=$(( $(date +%s) - start ))
grep -q "Input/output error" dd.err || { cat dd.err; fail "the read failed, but not with EIO"; }
[ $took -le 40 ] || fail "the read took ${took}s to fail (the dead-connection timeout is 10 s)"
echo "after SIGKILL a read fails with EIO in ${took}s"
vdl -d "$dev" || fail "-d after SIGKILL"
[ ! -e "$dev" ] && [ ! -e "${dev}p1" ] && [ ! -e "/run/vdiskload/$name.json" ] || fail "-d left $dev or its record"
[ "$(cat "/sys/block/$kname/size")" = 0 ] || fail "/dev/$kname still connected after -d"
[ -z "$(cat "/sys/block/$kname/backend" 2>/dev/null)" ] || fail "/dev/$kname still has a backend identifier"
echo "-d disconnected /dev/$kname and removed $dev"
