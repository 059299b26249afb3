#!/bin/sh
# Partitioned disks for attach (vdiskload's own partition devices) and the partition-table reader, 32 MiB, sparse:
#   gpt-ext4.{raw,qcow,qcow2,vmdk,vdi,vhd,vhdx}  GPT, partition 1 (1 MiB .. 31 MiB) ext4 holding hello.txt and data.bin
#   mbr-logical.{raw,qcow2}  MBR: primaries 1, 2, extended 3 with logicals 5, 6, 7; ext4 with hello.txt on 6
#   notable.qcow2            ext4 on the whole disk, no partition table
#   testdata/disks.sh DIR   (writes DIR/images.txt and DIR/disks.txt)
# DIR/disks.txt, one line per file a disk holds: FILE FORMAT TABLE PARTITION_NUMBER_OR_- FS_FILE SHA256
# (TABLE gpt, mbr or none; FS_FILE the file's path inside the ext4 file system).
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: disks.sh DIR}
cd "$dir"
rm -f gpt-ext4.* mbr-logical.* notable.qcow2 images.txt disks.txt
work=$(mktemp -d "$dir/disks.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
echo "hello from a vdiskload test disk" > "$work/root/hello.txt"
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(20240601).randbytes(1 << 20))' > "$work/root/data.bin"
sha() { sha256sum "$work/root/$1" | cut -d' ' -f1; }

# mkext4 FILE SIZE: an ext4 file system of SIZE holding $work/root, made rootless and checked.
mkext4() {
    truncate -s "$2" "$1"
    mkfs.ext4 -q -F -d "$work/root" "$1"
    e2fsck -fn "$1" >/dev/null 2>&1 || { echo "disks.sh: e2fsck -fn found errors in the new file system $1" >&2; exit 1; }
}

# GPT disk: partition 1 from sector 2048 (1 MiB), 30 MiB long.
truncate -s 32M gpt-ext4.raw
# sgdisk can exit 0 without writing a table: check the table it wrote.
sgdisk -n 1:2048:+30M -t 1:8300 -c 1:ext4 gpt-ext4.raw >/dev/null
sgdisk -i 1 gpt-ext4.raw | grep -q "Partition name: 'ext4'" || { echo "disks.sh: sgdisk made no partition" >&2; exit 1; }
mkext4 "$work/gpt.ext4" 30M
dd if="$work/gpt.ext4" of=gpt-ext4.raw bs=1M seek=1 conv=notrunc,sparse status=none
echo "gpt-ext4.raw raw" >> images.txt
for spec in qcow:qcow: qcow2:qcow2: vmdk:vmdk: vdi:vdi: vpc:vhd:force_size=on vhdx:vhdx:; do
    fmt=${spec%%:*}; rest=${spec#*:}; ext=${rest%%:*}; opts=${rest#*:}
    qemu-img convert -q -f raw -O "$fmt" ${opts:+-o "$opts"} gpt-ext4.raw "gpt-ext4.$ext"
    flag=""; [ "$fmt" = vhdx ] && flag=no-map   # qemu 7.2 reports no block status for vhdx
    echo "gpt-ext4.$ext $fmt $flag" >> images.txt
done

# MBR disk: 1 and 2 primary, 3 extended to the end of the disk, logicals 5, 6 (16 MiB, ext4), 7.
truncate -s 32M mbr-logical.raw
sfdisk -q mbr-logical.raw <<'END'
label: dos
start=2048, size=4096, type=83
start=6144, size=4096, type=83
start=10240, type=5
start=12288, size=4096, type=83
start=18432, size=32768, type=83
start=53248, size=4096, type=83
END
[ "$(sfdisk -d mbr-logical.raw | grep -c '^mbr-logical.raw')" = 6 ] || { echo "disks.sh: sfdisk made no logical partitions" >&2; exit 1; }
mkext4 "$work/logical.ext4" 16M
dd if="$work/logical.ext4" of=mbr-logical.raw bs=512 seek=18432 conv=notrunc,sparse status=none
qemu-img convert -q -f raw -O qcow2 mbr-logical.raw mbr-logical.qcow2
echo "mbr-logical.raw raw" >> images.txt
echo "mbr-logical.qcow2 qcow2" >> images.txt

# No table: the file system is the disk.
mkext4 "$work/whole.ext4" 32M
qemu-img convert -q -f raw -O qcow2 "$work/whole.ext4" notable.qcow2
echo "notable.qcow2 qcow2" >> images.txt

while read -r file fmt flag; do
    case "$file" in
        gpt-ext4.*) for f in hello.txt data.bin; do echo "$file $fmt gpt 1 /$f $(sha $f)"; done ;;
        mbr-logical.*) echo "$file $fmt mbr 6 /hello.txt $(sha hello.txt)" ;;
        notable.*) echo "$file $fmt none - /hello.txt $(sha hello.txt)" ;;
    esac
done < images.txt > disks.txt
