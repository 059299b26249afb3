#!/bin/sh
# The kernel's nbd client in the guest: qemu-nbd -c serves a GPT qcow2 on /dev/nbd0, the device reads
# back byte for byte as qemu-img's raw conversion, and the kernel's partition scan adds /dev/nbd0p1.
set -e
modprobe nbd
dev=/dev/nbd0
[ -b $dev ] || { echo "no $dev after modprobe nbd"; exit 1; }

truncate -s 16M disk.raw
sgdisk -n 1:2048:+8M -t 1:8300 disk.raw > /dev/null  # (-q would skip writing a new GPT)
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2
# Data in the partition and past it, so that a wrong read shows.
qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' -c 'write -P 0xa5 12M 4k' disk.qcow2 > /dev/null
qemu-img convert -f qcow2 -O raw disk.qcow2 expected.raw

qemu-nbd -f qcow2 -c $dev disk.qcow2
trap 'qemu-nbd -d $dev > /dev/null 2>&1 || true' EXIT
# qemu-nbd -c returns once the device is set up; the size shows when the kernel has it.
i=0
while [ "$(cat /sys/block/nbd0/size)" = 0 ]; do
    i=$((i + 1)); [ $i -le 100 ] || { echo "$dev never got a size"; exit 1; }
    sleep 0.1
done
cmp $dev expected.raw
echo "$dev reads as qemu-img convert -O raw"

i=0
while [ ! -b ${dev}p1 ]; do
    i=$((i + 1)); [ $i -le 100 ] || { echo "no ${dev}p1: the kernel's partition scan did not see the GPT"; ls /dev/nbd0*; exit 1; }
    sleep 0.1
done
# 8 MiB = 16384 sectors of 512 bytes, starting at sector 2048.
[ "$(cat /sys/block/nbd0/nbd0p1/size)" = 16384 ] || { echo "nbd0p1 size $(cat /sys/block/nbd0/nbd0p1/size)"; exit 1; }
[ "$(cat /sys/block/nbd0/nbd0p1/start)" = 2048 ]
dd if=${dev}p1 bs=1M skip=0 count=8 status=none | cmp - expected.raw --ignore-initial=0:1M --bytes=8M
echo "${dev}p1 is the GPT partition, 8 MiB at 1 MiB"

qemu-nbd -d $dev > /dev/null
trap - EXIT
i=0
while [ "$(cat /sys/block/nbd0/size)" != 0 ]; do
    i=$((i + 1)); [ $i -le 100 ] || { echo "$dev still has a size after qemu-nbd -d"; exit 1; }
    sleep 0.1
done
echo "qemu-nbd -d disconnected $dev"
