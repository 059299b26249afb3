#!/bin/sh
# vdisk.ko's control ioctls with bad arguments (kmod/tests/vdisk-ioctl-fuzz.c: each refused with its
# errno, then random bytes in every struct), a disk's life 20 times over (added, written, removed) with no
# object left in the module's caches, unloading refused while a disk exists, and unload + reload clean.
# The kernel's side of the verdict: slub_debug on the module's caches (vmtest/run) and dmesg (batch.sh).
set -e
[ -n "$VDL_KMOD" ] || { echo "no VDL_KMOD: vmtest/run builds the module"; exit 1; }
testd=$VDL_KMOD/vdisk-testd
fail() { echo "FAILED: $*"; dmesg | tail -n 30; exit 1; }
wait_for() {
    w=0
    while [ ! -e "$1" ]; do w=$((w + 1)); [ $w -le 600 ] || fail "$1 never appeared"; sleep 0.1; done
}
active() { awk -v c="$1" '$1 == c {print $2}' /proc/slabinfo; }

insmod "$VDL_KMOD/vdisk.ko"
wait_for /dev/vdisk-control
"$VDL_KMOD/vdisk-ioctl-fuzz" "$PWD" 200000 > fuzz.out 2>&1 || { cat fuzz.out; fail "vdisk-ioctl-fuzz"; }
tail -n 1 fuzz.out
[ "$(active vdisk_dev)" = 0 ] || fail "$(active vdisk_dev) disks left in vdisk_dev after the fuzzer"
[ "$(active vdisk_ext)" = 0 ] || fail "$(active vdisk_ext) extents left in vdisk_ext after the fuzzer"

# A disk at a time, 20 times: added, written and read (writes allocate, remap, discard), removed.
cycle=0
while [ $cycle -lt 20 ]; do
    rm -f ready
    "$testd" --size 8M --block 65536 --ready ready "store$cycle" > testd.out 2>&1 &
    pid=$!
    wait_for ready
    dev=/dev/$(cat ready)
    wait_for "$dev"
    dd if=/dev/urandom of=data bs=64k count=20 status=none
    dd if=data of="$dev" bs=64k seek=3 oflag=direct status=none
    blkdiscard -o 65536 -l 131072 "$dev"
    dd if="$dev" of=back bs=64k skip=3 count=20 iflag=direct status=none
    cmp data back || fail "cycle $cycle: what was written does not read back"
    if [ $cycle = 0 ]; then
        if rmmod vdisk 2> rmmod.err; then fail "rmmod succeeded with $dev attached"; fi
        echo "rmmod refused with a disk attached: $(cat rmmod.err)"
    fi
    kill -TERM $pid
    wait $pid || { cat testd.out; fail "cycle $cycle: the daemon's DEL failed"; }
    [ ! -e "$dev" ] || fail "cycle $cycle: $dev still there"
    cycle=$((cycle + 1))
done
[ "$(active vdisk_dev)" = 0 ] || fail "$(active vdisk_dev) disks left in vdisk_dev after 20 cycles"
[ "$(active vdisk_ext)" = 0 ] || fail "$(active vdisk_ext) extents left in vdisk_ext after 20 cycles"
echo "20 disks added, written, discarded, read back and removed; no object left in the module's caches"

rmmod vdisk || fail "rmmod"
insmod "$VDL_KMOD/vdisk.ko"
wait_for /dev/vdisk-control
rmmod vdisk || fail "rmmod after reload"
echo "unloaded, reloaded, unloaded"
