# Sourced by the checks of the kmod backend (vdiskload's Java side over vdisk.ko): the jar, the module, and
# the helpers they share. The jar is run directly (the launcher would try to rebuild a stale jar, and the
# guest's view of the repository is read-only); ./run-tests builds it first.
repo=$(cd "$(dirname "$0")/../.." && pwd)
jar="$repo/vdiskload-cli/target/vdiskload.jar"
[ -f "$jar" ] || { echo "no $jar: build first (mvn verify)"; exit 1; }
[ -n "$VDL_KMOD" ] || { echo "no VDL_KMOD: vmtest/run builds the module"; exit 1; }
# The launcher's class-data archive, when ./run-tests made it first, for this JVM and the serving processes.
jsa="$repo/vdiskload-cli/target/vdiskload.jsa"
cds=""
if [ -f "$jsa" ] && [ "$jsa" -nt "$jar" ]; then cds="-XX:SharedArchiveFile=$jsa -Xshare:auto"; export VDISKLOAD_CDS="$jsa"; fi

# A guest under TCG on a busy host can take minutes to start a serving process: attaching (and --reconnect)
# waits up to 10 minutes here, not 120 s; a hang still fails the check.
export VDISKLOAD_ATTACH_TIMEOUT=${VDISKLOAD_ATTACH_TIMEOUT:-600}
vdl() { java $cds -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$jar" "$@"; }

fail() { # to stderr: it may run inside $(...)
    {
        echo "FAILED: $*"
        for l in /run/vdiskload/*.log; do [ -f "$l" ] && { echo "== $l"; tail -n 20 "$l"; }; done
        dmesg | tail -n 30
    } >&2
    exit 1
}

attach() { # attach ARGS...: the whole disk's device (--show's last line); fails the check if attaching fails
    out=$(vdl --backend kmod --show "$@") || fail "attach $*"
    echo "$out" | tail -n 1
}

daemon_pid() { sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/$1.json"; }

# Loads vdisk.ko. A module an earlier check left loaded (it failed midway) goes first, with its disks:
# one failure does not fail the checks after it.
kmod_load() {
    if [ -e /sys/module/vdisk ]; then
        echo "vdisk.ko left loaded by an earlier check: detaching its disks and unloading it"
        vdl -D > /dev/null 2>&1 || true
        rmmod vdisk || fail "vdisk.ko is left loaded and does not unload"
    fi
    insmod "$VDL_KMOD/vdisk.ko"
}
