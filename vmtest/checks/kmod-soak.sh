#!/bin/sh
# vmtest: long
# vmtest: scratch
# A 10-minute soak (issue 16): fio's verified random reads and writes on a kmod-attached qcow2 and vhdx,
# their serving processes killed with SIGKILL and replaced with `vdiskload --reconnect` every 30 s. No
# verify error, no failed I/O, both images clean. VDL_SOAK_SECS shortens it for a trial run.
set -e
. "$(dirname "$0")/../kmod-lib.sh"
[ -n "$VDL_SCRATCH" ] || { echo "no VDL_SCRATCH: vmtest/run gives a check marked 'vmtest: scratch' a disk"; exit 1; }
secs=${VDL_SOAK_SECS:-600}
kmod_load
dir="$VDL_SCRATCH/soak"
mkdir -p "$dir"

devs=""
for fmt in qcow2 vhdx; do
    qemu-img create -q -f $fmt "$dir/soak.$fmt" 256M
    devs="$devs $(VDISKLOAD_DEAD_TIMEOUT=900 attach "$dir/soak.$fmt")"
done
set -- $devs
# Random writes of mixed sizes, each block verified by a read (crc32c: a lost or misplaced write fails it)
# while the writes go on, and every block again at the end.
cat > soak.fio <<END
[global]
ioengine=libaio
direct=1
iodepth=8
rw=randrw
rwmixread=30
bsrange=4k-64k
verify=crc32c
verify_backlog=512
verify_fatal=1
size=192M
runtime=$secs
time_based=1
[qcow2]
filename=$1
[vhdx]
filename=$2
END
fio soak.fio > fio.out 2>&1 &
fio=$!
kills=0
start=$(date +%s)
while kill -0 $fio 2>/dev/null; do
    sleep 30
    kill -0 $fio 2>/dev/null || break
    for dev in $devs; do
        name=${dev#/dev/}
        kill -9 "$(daemon_pid "$name")" || fail "no serving process for $dev"
        i=0
        while [ "$(cat "/sys/block/$name/vdisk/state")" = live ]; do
            i=$((i + 1)); [ $i -le 100 ] || fail "$dev never saw its serving process die"; sleep 0.1
        done
        vdl --reconnect "$dev" || fail "--reconnect $dev"
    done
    kills=$((kills + 1))
    [ $(( $(date +%s) - start )) -le $((secs * 3 + 600)) ] || fail "fio still running long after its $secs s: hung"
done
wait $fio || { tail -n 40 fio.out; fail "fio failed"; }
if grep -E "got signal|Assertion|err= *[1-9]|verify: bad|fio: .*error" fio.out; then tail -n 40 fio.out; fail "fio reported an error"; fi
[ "$(grep -c "issued rwts: total=[0-9]*,[1-9]" fio.out)" = 2 ] || { cat fio.out; fail "a fio job wrote nothing"; }
[ $kills -ge $((secs / 60)) ] || fail "only $kills kill rounds in $secs s"
vdl -d $devs || fail "detach"
for fmt in qcow2 vhdx; do
    rc=0
    qemu-img check -q -f $fmt "$dir/soak.$fmt" || rc=$?
    [ $rc = 0 ] || [ $rc = 63 ] || fail "qemu-img check soak.$fmt: exit $rc"
done
rm -rf "$dir"
rmmod vdisk || fail "rmmod vdisk"
echo "soak: $secs s of verified random I/O on qcow2 and vhdx, $kills kill and reconnect rounds, no error, images clean"
