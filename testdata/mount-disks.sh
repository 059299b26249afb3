#!/bin/sh
# Disks for `vdiskload mount` and `vdiskload tar`, 64 MiB, sparse, qcow2:
#   two.qcow2    GPT: 1 vfat (label EFI, GPT name "esp", type ESP), 2 ext4 (label rootfs, GPT name "root",
#                type Linux data, UUID below) holding hello.txt: no default choice, the candidates are listed
#   root.qcow2   the same with partition 2 typed root-for-x86-64 (the default choice on amd64)
#   vfat.qcow2   GPT: 1 vfat only (label ONLYFAT) holding hello.txt: the only file system
#   whole.vmdk   ext4 on the whole disk, no partition table
#   dirty.qcow2  ext4 on the whole disk whose journal is marked as needing recovery
#   testdata/mount-disks.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: mount-disks.sh DIR}
cd "$dir"
rm -f two.qcow2 root.qcow2 vfat.qcow2 whole.vmdk dirty.qcow2 images.txt
work=$(mktemp -d "$dir/mount-disks.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
echo "hello from a vdiskload mount test" > "$work/root/hello.txt"
uuid=6b0c3a5e-2d47-4c1a-9e5b-3f1d2c4b5a69

truncate -s 20M "$work/p1"
mkfs.fat -n EFI "$work/p1" >/dev/null
truncate -s 30M "$work/p2"
mkfs.ext4 -q -F -L rootfs -U "$uuid" -d "$work/root" "$work/p2"

# gpt FILE TYPE2: the two-partition disk with partition 2 of type TYPE2 (sgdisk's codes)
gpt() {
    truncate -s 64M "$work/d.raw"
    sgdisk -n 1:2048:+20M -t 1:ef00 -c 1:esp -n 2:0:+30M -t "2:$2" -c 2:root "$work/d.raw" >/dev/null
    sgdisk -i 2 "$work/d.raw" | grep -q "Partition name: 'root'" || { echo "mount-disks.sh: sgdisk made no partition" >&2; exit 1; }
    dd if="$work/p1" of="$work/d.raw" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$work/p2" of="$work/d.raw" bs=1M seek=21 conv=notrunc,sparse status=none
    qemu-img convert -q -f raw -O qcow2 "$work/d.raw" "$1"
    rm "$work/d.raw"
    echo "$1 qcow2" >> images.txt
}
gpt two.qcow2 8300
gpt root.qcow2 8304

truncate -s 20M "$work/fat"
mkfs.fat -n ONLYFAT "$work/fat" >/dev/null
mcopy -i "$work/fat" "$work/root/hello.txt" ::hello.txt
truncate -s 64M "$work/d.raw"
sgdisk -n 1:2048:+20M -t 1:ef00 -c 1:esp "$work/d.raw" >/dev/null
dd if="$work/fat" of="$work/d.raw" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -q -f raw -O qcow2 "$work/d.raw" vfat.qcow2
echo "vfat.qcow2 qcow2" >> images.txt

qemu-img convert -q -f raw -O vmdk "$work/p2" whole.vmdk
echo "whole.vmdk vmdk" >> images.txt

cp "$work/p2" "$work/dirty"
debugfs -w -R "feature needs_recovery" "$work/dirty" >/dev/null 2>&1
dumpe2fs -h "$work/dirty" 2>/dev/null | grep -q needs_recovery || { echo "mount-disks.sh: debugfs did not mark the journal" >&2; exit 1; }
qemu-img convert -q -f raw -O qcow2 "$work/dirty" dirty.qcow2
echo "dirty.qcow2 qcow2" >> images.txt
