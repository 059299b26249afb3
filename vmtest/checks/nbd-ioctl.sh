#!/bin/sh
# The nbd backend's ioctl fallback (NBD_SET_SOCK ... NBD_DO_IT), forced with the test-only
# VDISKLOAD_NBD_IOCTL=1 on this kernel, which has the netlink interface: a GPT qcow2 attached, the kernel
# finds its partition, it reads as qemu-img's raw conversion, a write through the partition lands in the
# image (qemu-img check clean, compare equal); a SIGKILLed serving process takes the device with it (the
# driver resets it to size 0, --reconnect is refused) and -d cleans up. Needs the jar built (see attach-nbd.sh).
# vmtest: long (3-7 minutes of guest time on a loaded host: six JVM starts under TCG)
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
modprobe nbd
fail() { echo "FAILED: $*"; for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done; dmesg | grep -i nbd | tail -n 20; exit 1; }
export VDISKLOAD_NBD_IOCTL=1

truncate -s 16M expected.raw
sgdisk -n 1:2048:+8M -t 1:8300 expected.raw > /dev/null
dd if=/dev/urandom of=expected.raw bs=64k seek=20 count=4 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 expected.raw disk.qcow2

dev=$(vdl --backend nbd --show disk.qcow2 | tail -n 1) || fail "attach with the ioctls"
kdev=$(readlink -f "$dev"); k=${kdev#/dev/}
case "$kdev" in /dev/nbd[0-9]*) ;; *) fail "$dev points at $kdev, not an nbd device" ;; esac
[ -b "${dev}p1" ] || fail "no ${dev}p1"
[ -z "$(cat "/sys/block/$k/backend" 2>/dev/null)" ] || fail "$kdev has a backend identifier: netlink connected it, not the ioctls"
[ -f "/sys/block/$k/pid" ] || fail "$kdev has no receiving task (pid): no NBD_DO_IT"
[ "$(cat "/sys/block/$k/$k"p1/start)" = 2048 ] && [ "$(cat "/sys/block/$k/$k"p1/size)" = 16384 ] || fail "${k}p1 is not the GPT partition"
cmp "$dev" expected.raw || fail "$dev does not read as the image"
echo "$dev on $kdev through NBD_SET_SOCK/NBD_DO_IT: reads as the image, ${dev}p1 is the GPT partition"

head -c 256k /dev/urandom > new.bin
dd if=new.bin of="${dev}p1" bs=64k seek=8 oflag=direct conv=fsync status=none || fail "write to ${dev}p1"
dd if=new.bin of=expected.raw bs=64k seek=$((16 + 8)) conv=notrunc status=none # p1 starts at 1 MiB
vdl -d "$dev" || fail "-d"
[ ! -e "$dev" ] && [ "$(cat "/sys/block/$k/size")" = 0 ] && [ ! -f "/sys/block/$k/pid" ] || fail "-d left $kdev connected"
qemu-img check -q disk.qcow2 || fail "qemu-img check"
qemu-img compare -q -f raw -F qcow2 expected.raw disk.qcow2 || fail "the image is not what was written"
echo "a write through ${dev}p1 landed: qemu-img check clean, compare equal"

dev=$(vdl --backend nbd --show disk.qcow2 | tail -n 1) || fail "attach again"
name=${dev#/dev/}; kdev=$(readlink -f "$dev"); k=${kdev#/dev/}
pid=$(sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/$name.json")
kill -9 "$pid"
i=0
while [ -f "/sys/block/$k/pid" ] || [ "$(cat "/sys/block/$k/size")" != 0 ]; do
    i=$((i + 1)); [ $i -le 300 ] || fail "$kdev still connected 30 s after SIGKILL"; sleep 0.1
done
if vdl --reconnect "$dev" 2> reconnect.err; then fail "--reconnect of an ioctl device succeeded"; fi
grep -q "the kernel has no nbd device for it any more" reconnect.err || { cat reconnect.err; fail "--reconnect: wrong message"; }
vdl -d "$dev" || fail "-d after SIGKILL"
[ ! -e "$dev" ] && [ ! -e "/run/vdiskload/$name.json" ] || fail "-d left $dev or its record"
echo "SIGKILL: the driver reset $kdev with its NBD_DO_IT (size 0), --reconnect refused, -d cleaned up"
