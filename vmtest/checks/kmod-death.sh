#!/bin/sh
# The kmod backend's serving process dies (issue 16). Killed with SIGKILL while a file system on its disk
# is mounted and files are being written: files written before still read (in-kernel extents), a write
# that needs the serving process (an allocation) waits, `vdiskload --reconnect` completes it, and after
# unmount and detach `qemu-img check` is clean and every file written before and during the outage is
# there, whole. With the dead timeout expiring first, I/O that needs the serving process fails with EIO,
# reads of allocated data still succeed, and -d removes the disk. The serving process protects itself
# from memory pressure: PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE on every thread (PR_SET_IO_FLUSHER),
# oom_score_adj -1000, its memory locked.
set -e
. "$(dirname "$0")/../kmod-lib.sh"
kmod_load
modprobe ext4 2>/dev/null || true
mkdir mnt

# --- the serving process guards itself ---
qemu-img create -q -f qcow2 disk.qcow2 256M
dev=$(VDISKLOAD_DEAD_TIMEOUT=900 attach disk.qcow2)
name=${dev#/dev/}
pid=$(daemon_pid "$name")
[ "$(cat "/sys/block/$name/vdisk/daemon_pid")" = "$pid" ] || fail "vdisk/daemon_pid is not the serving process $pid"
[ "$(cat "/proc/$pid/oom_score_adj")" = -1000 ] || fail "oom_score_adj $(cat "/proc/$pid/oom_score_adj")"
grep -q '^VmLck:[[:space:]]*[1-9]' "/proc/$pid/status" || { grep Vm "/proc/$pid/status"; fail "the serving process has no memory locked"; }
for t in /proc/$pid/task/*; do
    # /proc/PID/stat's 9th field after the command: PF_MEMALLOC_NOIO 0x80000, PF_LOCAL_THROTTLE 0x100000
    flags=$(sed 's/^.*) //' "$t/stat" | cut -d' ' -f7)
    [ $(( flags & 0x180000 )) = $(( 0x180000 )) ] || fail "thread $t: flags $flags lack PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE"
done
echo "serving process $pid: every thread PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE, oom_score_adj -1000, memory locked"

# --- SIGKILL with writes running; --reconnect ---
mkfs.ext4 -q "$dev"
mount "$dev" mnt
head -c 8M /dev/urandom > before.bin
cp before.bin mnt/before.bin
sync
( i=0; while [ $i -lt 12 ]; do head -c 1M /dev/urandom > "during$i.bin"; cp "during$i.bin" mnt/; sync; i=$((i + 1)); done ) > writer.out 2>&1 &
writer=$!
sleep 3
kill -9 "$pid"
i=0
while [ "$(cat "/sys/block/$name/vdisk/state")" = live ]; do i=$((i + 1)); [ $i -le 100 ] || fail "the disk never saw its serving process die"; sleep 0.1; done
[ "$(cat "/sys/block/$name/vdisk/state")" = no-daemon ] || fail "state $(cat "/sys/block/$name/vdisk/state") after SIGKILL"
echo 3 > /proc/sys/vm/drop_caches
cmp before.bin mnt/before.bin || fail "before.bin unreadable with the serving process dead"
echo "SIGKILL: the disk waits for a serving process; files written before read on (in-kernel extents)"
head -c 4M /dev/urandom > outage.bin
( cp outage.bin mnt/outage.bin && sync ) &
copier=$!
sleep 5
kill -0 $copier 2>/dev/null || fail "an allocating write completed with no serving process"
vdl --reconnect "$dev" || fail "--reconnect $dev"
wait $copier || fail "the write made during the outage failed"
wait $writer || { cat writer.out; fail "the writes running at the kill failed"; }
echo "--reconnect: the new serving process took over; the waiting writes completed"
umount mnt
vdl -d "$dev" || fail "-d $dev"
qemu-img check -q -f qcow2 disk.qcow2 || fail "qemu-img check after the outage"
dev=$(attach -r disk.qcow2)
mount -o ro "$dev" mnt
for f in before.bin outage.bin during*.bin; do cmp "$f" "mnt/$f" || fail "$f differs after the outage"; done
umount mnt
vdl -d "$dev"
echo "qemu-img check clean; before.bin, outage.bin and every file of the writer intact"

# --- the dead timeout expires first ---
qemu-img create -q -f qcow2 short.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' short.qcow2 > /dev/null
dev=$(VDISKLOAD_DEAD_TIMEOUT=5 attach short.qcow2)
name=${dev#/dev/}
kill -9 "$(daemon_pid "$name")"
i=0
while [ "$(cat "/sys/block/$name/vdisk/state")" != failing ]; do
    i=$((i + 1)); [ $i -le 300 ] || fail "state $(cat "/sys/block/$name/vdisk/state"), not failing, 30 s after the kill"
    sleep 0.1
done
if dd if=/dev/zero of="$dev" bs=4k count=1 seek=4096 oflag=direct 2> dd.err; then fail "an allocating write succeeded with no serving process"; fi
grep -q "Input/output error" dd.err || { cat dd.err; fail "the write failed, but not with EIO"; }
[ "$(dd if="$dev" bs=4k count=1 iflag=direct status=none | od -An -tx1 | head -n 1 | tr -d ' ')" = 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a ] \
    || fail "allocated data unreadable after the timeout"
vdl -d "$dev" || fail "-d after the timeout"
[ ! -e "$dev" ] && [ ! -e "/sys/block/$name" ] && [ ! -e "/run/vdiskload/$name.json" ] || fail "-d left $dev or its record"
qemu-img check -q -f qcow2 short.qcow2 || fail "qemu-img check short.qcow2"
echo "dead timeout: the allocating write failed with EIO, allocated data still read, -d removed the disk"
rmmod vdisk || fail "rmmod"
