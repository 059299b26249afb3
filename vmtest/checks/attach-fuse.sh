#!/bin/sh
# vdiskload --backend fuse on a kernel with partition support: the whole disk's loop device is scanned by
# the kernel, and /dev/<fmt>NpM must be the kernel's own /dev/loopNpM (the host this is built on has no
# partition support, so there AttachTest covers vdiskload's own per-partition loop devices instead).
# GPT: mount p1, check the files disks.txt lists, write one, detach; qemu-img check is clean; attached
# again read-only the new file is there. MBR with logical partitions: p5..p7 are the kernel's, the file
# on p6 reads back. -d leaves no loop device, link or record behind.
# Needs the jar built (./run-tests runs mvn verify first); see attach-nbd.sh for why it runs the jar.
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
modprobe fuse
modprobe loop
modprobe ext4 2>/dev/null || true
sh "$repo/testdata/disks.sh" "$PWD" > /dev/null
mkdir mnt
fail() { { echo "FAILED: $*"; for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done; } >&2; exit 1; }
hash_of() { awk -v f="$1" -v p="$2" '$1 == f && $5 == p {print $6}' disks.txt; }

# attach ARGS...: vdiskload --backend fuse --show ARGS; prints the device (--show's last line).
attach() { out=$(vdl --backend fuse --show "$@") || fail "attach $*"; echo "$out" | tail -n 1; }

# expect_kernel_partition LINK: LINK resolves to a partition the kernel found on a loop device.
expect_kernel_partition() {
    k=$(readlink -f "$1")
    case "$k" in /dev/loop[0-9]*p[0-9]*) ;; *) fail "$1 is $k, not a partition of the kernel's scan" ;; esac
    [ -e "/sys/class/block/$(basename "$k")/partition" ] || fail "$k is not a kernel partition"
}

img=gpt-ext4.qcow2
dev=$(attach "$img")
whole=$(readlink -f "$dev")
case "$whole" in /dev/loop[0-9]*) ;; *) fail "$dev is $whole, not a loop device" ;; esac
expect_kernel_partition "${dev}p1"
[ "$(readlink -f "${dev}p1")" = "${whole}p1" ] || fail "${dev}p1 is not ${whole}p1"
[ "$(losetup -n -O NAME -j "/run/vdiskload/$(basename "$dev")/p1" | wc -l)" = 0 ] \
    || fail "a loop device of vdiskload's own was made for p1 although the kernel found it"
mount "${dev}p1" mnt
for f in hello.txt data.bin; do
    [ "$(sha256sum "mnt/$f" | cut -d' ' -f1)" = "$(hash_of "$img" "/$f")" ] || fail "$img: $f differs"
done
echo "written through fuse and the kernel's partition" > mnt/new.txt
umount mnt
vdl -d "$dev" || fail "detach $dev"
[ ! -e "$dev" ] && [ ! -e "${dev}p1" ] || fail "-d left $dev or ${dev}p1"
[ -z "$(losetup -n -O NAME -j "/run/vdiskload/$(basename "$dev")/disk")" ] || fail "-d left a loop device"
rc=0; qemu-img check -q -f qcow2 "$img" || rc=$?
[ $rc = 0 ] || fail "qemu-img check $img: exit $rc"
dev=$(attach -r "$img")
expect_kernel_partition "${dev}p1"
mount -o ro "${dev}p1" mnt
[ "$(cat mnt/new.txt)" = "written through fuse and the kernel's partition" ] || fail "new.txt not there after re-attach"
umount mnt
vdl -d "$dev"
echo "gpt: ${dev}p1 is ${whole}p1 from the kernel's scan; read, written, checked, re-read"

img=mbr-logical.qcow2
dev=$(attach -r "$img")
for n in 1 2 5 6 7; do expect_kernel_partition "${dev}p$n"; done
mount -o ro "${dev}p6" mnt
[ "$(sha256sum mnt/hello.txt | cut -d' ' -f1)" = "$(hash_of "$img" /hello.txt)" ] || fail "$img: hello.txt on p6 differs"
umount mnt
vdl -d "$dev"
echo "mbr: logical partitions p5-p7 come from the kernel's scan; hello.txt on p6 reads back"

# A layout whose ESP is built as vfat from a directory: the kernel mounts it (this host's kernel has no
# vfat, so LayoutAttachTest checks the bytes with fsck.fat and mtools only).
modprobe vfat
modprobe nls_cp437; modprobe nls_ascii  # FAT's default codepage and iocharset (Debian: cp437, ascii)
mkdir -p esp/EFI/BOOT
echo "an EFI loader stand-in" > esp/EFI/BOOT/BOOTX64.EFI
cat > esp.json <<'JSON'
{ "vdiskload-layout": 1, "table": "gpt",
  "partitions": [ { "source": "esp/", "filesystem": "vfat", "type": "esp", "name": "EFI System", "size": "16M" } ] }
JSON
export VDISKLOAD_CACHE_DIR="$PWD/cache"
# Building the ESP into the cache takes a while under TCG: info builds it, so attach's wait is only for the devices.
vdl info esp.json > /dev/null || fail "info esp.json"
dev=$(attach -r esp.json)
expect_kernel_partition "${dev}p1"
mount -t vfat -o ro "${dev}p1" mnt
[ "$(cat mnt/EFI/BOOT/BOOTX64.EFI)" = "an EFI loader stand-in" ] || fail "BOOTX64.EFI on the vfat ESP differs"
umount mnt
vdl -d "$dev"
echo "layout: the vfat ESP built from a directory mounts as ${dev}p1 and holds its file"
