#!/bin/sh
# The reference rule (issue 19) through the nbd backend: a qcow2 whose backing file lies outside its directory
# is refused in one line, leaving no record and no connected nbd device; attached with --allow-refs DIR, the
# device reads the backing file; its serving process SIGKILLed, --reconnect (no flag, and an environment
# allowing nothing: the directories come from the record) brings the same device back; -d detaches.
# Needs the jar built (see attach-nbd.sh).
# vmtest: long (a reconnect: four JVM starts and a serving process's, minutes of guest time under TCG)
set -e
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
vdl() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }
modprobe nbd
fail() { echo "FAILED: $*"; for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done; exit 1; }
connected() { for p in /sys/block/nbd*/pid; do [ -e "$p" ] && echo "${p%/pid}"; done; true; }

mkdir images outside
head -c 1M /dev/urandom > outside/base.raw
qemu-img create -q -f qcow2 -u -b ../outside/base.raw -F raw images/top.qcow2 1M
out=$(realpath outside)
before=$(connected)

if vdl --backend nbd images/top.qcow2 2> refused.err; then fail "attached without --allow-refs"; fi
[ "$(wc -l < refused.err)" = 1 ] || { cat refused.err; fail "the refusal is not one line"; }
grep -q "images/top.qcow2: backing file \"../outside/base.raw\" resolves to $out/base.raw, outside" refused.err \
    && grep -q -- "allow it with --allow-refs $out " refused.err || { cat refused.err; fail "the refusal does not say what and how"; }
[ -z "$(ls /run/vdiskload/*.json 2> /dev/null)" ] || fail "a record was left: $(ls /run/vdiskload)"
[ "$(connected)" = "$before" ] || fail "an nbd device was left connected: $(connected)"
echo "refused: $(cat refused.err)"

dev=$(VDISKLOAD_DEAD_TIMEOUT=600 vdl --backend nbd -r --show --allow-refs outside images/top.qcow2 | tail -n 1) \
    || fail "attach with --allow-refs"
name=${dev#/dev/}
kdev=$(readlink -f "$dev")
case "$kdev" in /dev/nbd[0-9]*) ;; *) fail "$dev points at $kdev, not an nbd device" ;; esac
dd if="$dev" of=read.bin bs=1M count=1 iflag=direct status=none || fail "read $dev"
cmp read.bin outside/base.raw || fail "$dev does not read as the backing file"
grep -q "\"$out\"" "/run/vdiskload/$name.json" || { cat "/run/vdiskload/$name.json"; fail "the record has no allowRefs $out"; }
echo "attached with --allow-refs outside as $dev on $kdev: reads the backing file"

pid=$(sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/$name.json")
kill -9 "$pid"
i=0
while [ -e "/proc/$pid" ]; do i=$((i + 1)); [ $i -le 100 ] || fail "pid $pid still there after SIGKILL"; sleep 0.1; done
VDISKLOAD_ALLOW_REFS= vdl --reconnect "$dev" || fail "--reconnect (the record's directories)"
[ "$(readlink -f "$dev")" = "$kdev" ] || fail "$dev moved from $kdev to $(readlink -f "$dev")"
dd if="$dev" of=again.bin bs=1M count=1 iflag=direct status=none || fail "read $dev after the reconnect"
cmp again.bin outside/base.raw || fail "$dev does not read as the backing file after the reconnect"
echo "reconnected after SIGKILL with the recorded directories: $dev reads the backing file"

vdl -d "$dev" || fail "-d"
[ ! -e "$dev" ] && [ "$(cat "/sys/block/${kdev#/dev/}/size")" = 0 ] || fail "-d left $dev connected"
