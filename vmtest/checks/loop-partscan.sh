#!/bin/sh
# losetup -P in the guest: the kernel's partition scan gives /dev/loopNp1 for a GPT raw file
# (this host's own kernel has no partition-table support, the VM's Debian kernel has).
set -e
modprobe loop
truncate -s 16M disk.raw
sgdisk -n 1:2048:+8M -t 1:8300 disk.raw > /dev/null  # (-q would skip writing a new GPT)
printf 'vdiskload partition data' | dd of=disk.raw bs=1M seek=1 conv=notrunc status=none
dev=$(losetup -f --show -P disk.raw)
trap 'losetup -d $dev' EXIT
i=0
while [ ! -b "${dev}p1" ]; do
    i=$((i + 1)); [ $i -le 100 ] || { echo "no ${dev}p1 after losetup -P"; ls "$dev"*; exit 1; }
    sleep 0.1
done
name=$(basename "$dev")
[ "$(cat "/sys/block/$name/${name}p1/size")" = 16384 ] || { echo "${name}p1 is not 8 MiB"; exit 1; }
[ "$(head -c 24 "${dev}p1")" = 'vdiskload partition data' ]
echo "${dev}p1 is the GPT partition, 8 MiB at 1 MiB"
