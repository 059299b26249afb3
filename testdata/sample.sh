#!/bin/sh
# Makes the demo's sample disk in DIR: a 64 MiB GPT disk with one partition holding a 62 MiB ext4 file system with hello.txt,
# stored as a qcow2 overlay on a qcow2 base (so the demo shows a backing chain).
#   testdata/sample.sh DIR
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: sample.sh DIR}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
echo "hello from vdiskload" > "$work/root/hello.txt"
truncate -s 62M "$work/part.ext4"
mkfs.ext4 -q -F -L sample -d "$work/root" "$work/part.ext4"
truncate -s 64M "$work/disk.raw"
# sgdisk can exit 0 without writing a table (it did with -q): check the table it wrote.
sgdisk -n 1:2048:0 -t 1:8300 -c 1:sample "$work/disk.raw" >/dev/null
sgdisk -i 1 "$work/disk.raw" | grep -q "Partition name: 'sample'" || { echo "sample.sh: sgdisk made no partition" >&2; exit 1; }
dd if="$work/part.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$dir/sample-base.qcow2" "$dir/sample.qcow2"
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$dir/sample-base.qcow2"
qemu-img create -q -f qcow2 -b sample-base.qcow2 -F qcow2 "$dir/sample.qcow2"
# A change in the overlay: 512 KiB after the file system's end, still inside the partition.
qio -f qcow2 -c 'write -P 0x5a 63M 512k' "$dir/sample.qcow2"
echo "$dir/sample.qcow2"
