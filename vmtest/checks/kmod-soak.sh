#!/bin/sh
# vmtest: long
# vmtest: scratch
# A 10-minute soak (issue 16): fio's verified random reads and writes on a kmod-attached qcow2 and vhdx,
# their serving processes killed with SIGKILL and replaced with `vdiskload --reconnect` every 30 s of
# I/O. No verify error, no failed I/O, both images clean. VDL_SOAK_SECS shortens it for a trial.
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
qcow2_dev=$1 vhdx_dev=$2
# Rounds of 30 s of random writes of mixed sizes, each block verified by a read (crc32c: a lost or misplaced
# write fails it) while the writes go on, and every block again at the end of the round; 15 s into each
# round both serving processes are killed and replaced, so I/O that needs them waits through the reconnect
# (which under TCG on a busy host can take minutes: rounds, not one fio run, so that the kills keep coming).
rounds=$(( (secs + 29) / 30 ))
job() { # the job file of round $1: its own random sequence
    cat <<END
[global]
randseed=$1
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
runtime=30
time_based=1
[qcow2]
filename=$qcow2_dev
[vhdx]
filename=$vhdx_dev
END
}
start=$(date +%s)
round=0
while [ $round -lt $rounds ]; do
    round=$((round + 1))
    job $round > soak.fio
    fio soak.fio > fio.out 2>&1 &
    fio=$!
    sleep 15
    kill -0 $fio 2>/dev/null || { tail -n 40 fio.out; fail "round $round: fio ended before the kill"; }
    for dev in $devs; do
        name=${dev#/dev/}
        kill -9 "$(daemon_pid "$name")" || fail "no serving process for $dev"
        i=0
        while [ "$(cat "/sys/block/$name/vdisk/state")" = live ]; do
            i=$((i + 1)); [ $i -le 100 ] || fail "$dev never saw its serving process die"; sleep 0.1
        done
        vdl --reconnect "$dev" || fail "--reconnect $dev"
    done
    wait $fio || { tail -n 40 fio.out; fail "round $round: fio failed"; }
    if grep -E "got signal|Assertion|err= *[1-9]|verify: bad|fio: .*error" fio.out; then tail -n 40 fio.out; fail "round $round: fio reported an error"; fi
    [ "$(grep -c "issued rwts: total=[0-9]*,[1-9]" fio.out)" = 2 ] || { cat fio.out; fail "round $round: a fio job wrote nothing"; }
    [ $(( $(date +%s) - start )) -le $((rounds * 30 * 10 + 600)) ] || fail "round $round: still running far past its time: hung"
    echo "round $round of $rounds: verified, $(( $(date +%s) - start )) s in"  # progress on the console
done
vdl -d $devs || fail "detach"
# A serving process killed while it allocated may leak the clusters it had taken (qemu's images do the same):
# leaks and nothing worse (exit 3), which check -r leaks then repairs; any corruption fails.
for fmt in qcow2 vhdx; do
    rc=0
    qemu-img check -q -f $fmt "$dir/soak.$fmt" || rc=$?
    if [ $rc = 3 ]; then
        echo "soak.$fmt: leaks after the kills; repairing them"
        qemu-img check -q -r leaks -f $fmt "$dir/soak.$fmt" > /dev/null && qemu-img check -q -f $fmt "$dir/soak.$fmt" \
            || fail "soak.$fmt: not clean after check -r leaks"
    elif [ $rc != 0 ] && [ $rc != 63 ]; then
        fail "qemu-img check soak.$fmt: exit $rc"
    fi
done
rm -rf "$dir"
rmmod vdisk || fail "rmmod vdisk"
echo "soak: $rounds rounds of 30 s of verified random I/O on qcow2 and vhdx, each with a kill and reconnect of both serving processes, in $(( $(date +%s) - start )) s: no error, images clean"
