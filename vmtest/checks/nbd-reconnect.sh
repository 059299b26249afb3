#!/bin/sh
# vdiskload --reconnect in the guest: a qcow2 attached with --backend nbd is written, its serving process
# SIGKILLed; a read started then blocks (the driver waits for a live connection), --reconnect starts a
# new serving process on the same /dev/nbdN, and the read completes with the bytes written before the
# kill; a write after the reconnect lands in the image (qemu-img check clean, qemu-img compare equal).
# Needs the jar built (see attach-nbd.sh).
# vmtest: long (3-7 minutes of guest time on a loaded host: six JVM starts under TCG)
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
modprobe nbd
fail() { echo "FAILED: $*"; for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done; dmesg | grep -i nbd | tail -n 20; exit 1; }
pid_of() { sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/$1.json"; }

qemu-img create -q -f qcow2 disk.qcow2 64M
head -c 1M /dev/urandom > before.bin
head -c 1M /dev/urandom > after.bin
# I/O waits 10 minutes for the reconnect (default 120 s): two JVMs starting in a busy TCG guest may
# take longer than the default, and this check is about what the reconnect does, not the timeout.
dev=$(VDISKLOAD_DEAD_TIMEOUT=600 vdl --backend nbd --show disk.qcow2 | tail -n 1) || fail "attach"
name=${dev#/dev/}
kdev=$(readlink -f "$dev")
dd if=before.bin of="$dev" bs=1M seek=4 oflag=direct conv=fsync status=none || fail "write before the kill"

pid=$(pid_of "$name")
kill -9 "$pid"
i=0
while [ -e "/proc/$pid" ]; do i=$((i + 1)); [ $i -le 100 ] || fail "pid $pid still there after SIGKILL"; sleep 0.1; done

# No serving process: the read waits (up to the dead-connection timeout) for a connection.
start=$(date +%s)
dd if="$dev" of=read.bin bs=1M skip=4 count=1 iflag=direct status=none 2> read.err &
reader=$!
sleep 2
[ -e "/proc/$reader" ] || { cat read.err; fail "the read did not wait for a connection"; }
t=$(date +%s)
vdl --reconnect "$dev" || fail "--reconnect"
echo "--reconnect took $(( $(date +%s) - t )) s"
wait "$reader" || { cat read.err; fail "the read that waited failed"; }
echo "a read waiting since the kill completed $(( $(date +%s) - start )) s after it began, on $kdev"
cmp read.bin before.bin || fail "the read after the reconnect returned other bytes"
[ "$(readlink -f "$dev")" = "$kdev" ] || fail "$dev moved from $kdev to $(readlink -f "$dev")"

new=$(pid_of "$name")
[ -n "$new" ] && [ "$new" != "$pid" ] && [ -e "/proc/$new" ] || fail "the record names pid '$new', not a new serving process"
tr '\0' ' ' < "/proc/$new/cmdline" | grep -q "^@vdiskload-$name " || fail "argv[0] of the new serving process: $(tr '\0' ' ' < /proc/$new/cmdline)"
if vdl --reconnect "$dev" 2> again.err; then fail "--reconnect with a live serving process succeeded"; fi
grep -q "runs: nothing to reconnect" again.err || { cat again.err; fail "--reconnect of a live attachment: wrong message"; }

dd if=after.bin of="$dev" bs=1M seek=8 oflag=direct conv=fsync status=none || fail "write after the reconnect"
vdl -d "$dev" || fail "-d"
[ ! -e "$dev" ] && [ "$(cat "/sys/block/${kdev#/dev/}/size")" = 0 ] || fail "-d left $dev connected"

qemu-img check -q disk.qcow2 || fail "qemu-img check after the reconnect"
truncate -s 64M expected.raw
dd if=before.bin of=expected.raw bs=1M seek=4 conv=notrunc status=none
dd if=after.bin of=expected.raw bs=1M seek=8 conv=notrunc status=none
qemu-img compare -q -f raw -F qcow2 expected.raw disk.qcow2 || fail "the image is not what was written before and after the reconnect"
echo "written before the kill and after the reconnect: qemu-img check clean, compare equal"
