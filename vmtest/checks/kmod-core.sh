#!/bin/sh
# vdisk.ko with its own test daemon (kmod/tests/vdisk-testd.c: a toy allocating format), apart from
# vdiskload's Java side: the disk is a removable kernel disk named vtestN with partitions vtestNp1,
# hdparm -i identifies it, a file system on it works, reads of allocated data stay in the kernel (the
# upcall counter does not move), and fio's verified random writes beside concurrent writes and discards
# (blocks freed and reused under the kernel's mapping) read back right. Then a second daemon takes over
# from a killed one, an open disk refuses DEL, and the module unloads clean.
set -e
[ -n "$VDL_KMOD" ] || { echo "no VDL_KMOD: vmtest/run builds the module"; exit 1; }
testd=$VDL_KMOD/vdisk-testd
fail() { echo "FAILED: $*"; for f in testd*.out; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done; dmesg | tail -n 30; ps ax | grep -v grep | grep testd; cat /proc/$(pgrep -f vdisk-testd | head -1)/stack 2>/dev/null; exit 1; }
wait_for() { # wait_for PATH: a device node appears (devtmpfs, no udev here)
    w=0
    while [ ! -e "$1" ]; do w=$((w + 1)); [ $w -le 600 ] || fail "$1 never appeared"; sleep 0.1; done
}

insmod "$VDL_KMOD/vdisk.ko"
wait_for /dev/vdisk-control
[ "$(stat -c %a /dev/vdisk-control)" = 600 ] || fail "/dev/vdisk-control is not root-only"
modprobe ext4 2>/dev/null || true

# --- a disk, its identity, a partition table, a file system ---
"$testd" --size 128M --block 65536 --dead-timeout 120 --ready ready store > testd.out 2>&1 &
pid=$!
wait_for ready
name=$(cat ready)
[ "$name" = vtest0 ] || fail "first disk named $name, not vtest0"
dev=/dev/$name
wait_for $dev
[ "$(cat /sys/block/$name/removable)" = 1 ] || fail "removable is not 1"
[ "$(cat /sys/block/$name/size)" = $((128 * 2048)) ] || fail "size $(cat /sys/block/$name/size)"
[ "$(cat /sys/block/$name/vdisk/format)" = testd ] || fail "vdisk/format"
[ "$(cat /sys/block/$name/vdisk/image)" = "$PWD/store" ] || fail "vdisk/image: $(cat /sys/block/$name/vdisk/image)"
[ "$(cat /sys/block/$name/vdisk/daemon_pid)" = $pid ] || fail "vdisk/daemon_pid"
[ "$(cat /sys/block/$name/vdisk/state)" = live ] || fail "vdisk/state"
[ "$(cat /sys/block/$name/device/model)" = "vdiskload testd" ] || fail "device/model"
[ "$(lsblk -dno MODEL $dev)" = "vdiskload testd" ] || fail "lsblk MODEL: '$(lsblk -dno MODEL $dev)'"
hdparm -i $dev > hdparm.out 2>&1 || { cat hdparm.out; fail "hdparm -i"; }
grep -q "Model=vdiskload testd, FwRev=0.1, SerialNo=TESTD-$pid" hdparm.out || { cat hdparm.out; fail "hdparm -i identity"; }
grep -q "Removable" hdparm.out || { cat hdparm.out; fail "hdparm -i: not removable"; }
if grep -qi "failed" hdparm.out; then cat hdparm.out; fail "hdparm -i printed an error"; fi
echo "$dev: removable, identified (hdparm -i, lsblk MODEL), sysfs vdisk/ attributes"

sgdisk -n 1:2048:+60M -t 1:8300 $dev > /dev/null
wait_for ${dev}p1
mkfs.ext4 -q ${dev}p1
mkdir mnt
mount ${dev}p1 mnt
head -c 20M /dev/urandom > data.bin
cp data.bin mnt/
sync
sum=$(sha256sum < data.bin)
umount mnt
mount -o ro ${dev}p1 mnt  # (read-write, the mount itself writes and flushes: those upcalls are not reads)
echo 3 > /proc/sys/vm/drop_caches
up_before=$(cat /sys/block/$name/vdisk/upcalls)
reads_before=$(cat /sys/block/$name/vdisk/kernel_reads)
[ "$(sha256sum < mnt/data.bin)" = "$sum" ] || fail "data.bin differs after remount"
up_after=$(cat /sys/block/$name/vdisk/upcalls)
reads_after=$(cat /sys/block/$name/vdisk/kernel_reads)
[ "$up_after" = "$up_before" ] || fail "reading allocated data made $((up_after - up_before)) upcalls"
[ "$reads_after" -gt "$reads_before" ] || fail "kernel_reads did not move"
echo "ext4 on ${dev}p1: 20 MiB written and read back; the reads made no upcalls ($((reads_after - reads_before)) in-kernel reads)"
umount mnt
mount ${dev}p1 mnt

# --- verified random writes with concurrent discards: blocks freed and reused under the mapping ---
# Past the partition: "verify" writes and verifies [64M, 88M) (crc32c: a block read through a stale
# mapping fails it) while "churn-write" and "churn-trim" write and discard [88M, 128M), freeing blocks
# "verify" then gets. fio 3.33 exits 0 even when a job dies of a signal: its output is checked too.
cat > stale.fio <<'END'
[global]
ioengine=psync
direct=1
randrepeat=1
[verify]
offset=64M
size=24M
bs=4k
rw=randwrite
verify=crc32c
do_verify=1
verify_backlog=64
[churn-write]
offset=88M
size=40M
rw=randwrite
bs=64k
[churn-trim]
offset=88M
size=40M
rw=randtrim
bs=128k
END
fio --filename=$dev stale.fio > fio.out 2>&1 || { tail -n 30 fio.out; fail "fio"; }
if grep -E "got signal|Assertion|err= *[1-9]|verify: bad|fio: .*error" fio.out; then tail -n 30 fio.out; fail "fio"; fi
grep -q "issued rwts: total=[0-9]*,[1-9]" fio.out || { cat fio.out; fail "fio wrote nothing"; }
umount mnt
fsck.ext4 -fn ${dev}p1 > fsck.out 2>&1 || { cat fsck.out; fail "fsck after fio"; }
echo "fio: verified random writes beside concurrent writes and trims (block reuse); fsck clean"

# --- the daemon dies: in-kernel reads go on, a second daemon takes over ---
mount ${dev}p1 mnt
kill -9 $pid
wait $pid 2>/dev/null || true
i=0
while [ "$(cat /sys/block/$name/vdisk/state)" = live ]; do i=$((i + 1)); [ $i -le 50 ] || fail "state stays live"; sleep 0.1; done
[ "$(cat /sys/block/$name/vdisk/state)" = no-daemon ] || fail "state $(cat /sys/block/$name/vdisk/state) after kill"
echo 3 > /proc/sys/vm/drop_caches
[ "$(sha256sum < mnt/data.bin)" = "$sum" ] || fail "data.bin unreadable with the daemon dead"
( head -c 4M /dev/urandom > new.bin; cp new.bin mnt/new.bin; sync ) &
writer=$!
sleep 2
"$testd" --size 96M --block 65536 --recover $name store > testd2.out 2>&1 &
pid=$!
wait $writer || fail "writes during the outage failed"
[ "$(cat /sys/block/$name/vdisk/state)" = live ] || fail "not live after recover"
cmp new.bin mnt/new.bin || fail "new.bin differs"
umount mnt
fsck.ext4 -fn ${dev}p1 > fsck.out 2>&1 || { cat fsck.out; fail "fsck after recovery"; }
echo "daemon killed: allocated data still read; writes waited and completed on the new daemon; fsck clean"

# --- DEL refuses an open disk, then removes it ---
exec 3< $dev
kill -TERM $pid
i=0
until grep -q '^busy' testd2.out; do i=$((i + 1)); [ $i -le 100 ] || fail "DEL of an open disk did not say busy"; sleep 0.1; done
exec 3<&-
kill -TERM $pid
wait $pid || fail "the daemon's DEL failed"
[ ! -e $dev ] || fail "$dev still there after DEL"
[ ! -e /sys/block/$name ] || fail "/sys/block/$name still there after DEL"
echo "DEL refused while open (EBUSY), removed the disk once closed"
# --- a forced DEL under a mounted file system: its I/O fails, nothing oopses, the module unloads ---
rm -f ready
"$testd" --size 64M --block 65536 --force-del --ready ready store3 > testd3.out 2>&1 &
pid=$!
wait_for ready
dev=/dev/$(cat ready)
wait_for $dev
mkfs.ext4 -q $dev
mount $dev mnt
echo before > mnt/before.txt
sync
kill -TERM $pid
wait $pid || { cat testd3.out; fail "the forced DEL failed"; }
[ ! -e $dev ] || fail "$dev still there after a forced DEL"
if (echo after > mnt/after.txt && sync mnt/after.txt) 2> write.err; then fail "a write after the forced DEL succeeded"; fi
umount mnt || umount -l mnt
echo "forced DEL of a mounted disk: its writes fail, the mount goes"
if rmmod vdisk 2> /dev/null; then :; else sleep 1; rmmod vdisk || fail "rmmod after the forced DEL"; fi
[ ! -e /dev/vdisk-control ] || fail "/dev/vdisk-control left after rmmod"
echo "module unloaded"
