#!/bin/bash
# Random 4 KiB in-place writes, per format: qemu-io beside vdiskload's library (RandomWrites), each in one
# process (start-up included), the same writes in the same order into a fresh image that qemu-img create
# made, a flush at the end in both. Prints IOPS and the ratio; checks the two images with qemu-img
# compare and qemu-img check (bench/README.md). With --write-through, the library writes with metadata
# write-through (DiskImage.setMetadataWriteThrough: no completed write lost to a killed process) and
# qemu-io with -t writethrough, its mode that loses none (a flush after every write).
#
#   bench/random-writes-vs-qemu.sh [--size 1G] [--count 10000] [--seed 42] [--runs 5] [--formats qcow2,...] [--write-through]
#
# Nothing runs this from the test suite.
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=random-writes-vs-qemu.sh
ALL_FORMATS="raw qcow2 qcow vmdk vdi vpc vhdx"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

size=1G
count=10000
seed=42
runs=5
formats=$ALL_FORMATS
write_through=
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    echo "formats: $ALL_FORMATS"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=${2:?--size needs a value}; shift 2 ;;
        --count) count=${2:?--count needs a value}; shift 2 ;;
        --seed) seed=${2:?--seed needs a value}; shift 2 ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --formats) formats=$(echo "${2:?--formats needs a value}" | tr ',' ' '); shift 2 ;;
        --cache) cache=${2:?--cache needs a value}; shift 2 ;;
        --write-through) write_through=write-through; shift ;;
        -h|--help) usage 0 ;;
        *) echo "$NAME: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
for f in $formats; do
    case " $ALL_FORMATS " in *" $f "*) ;; *) die "unknown format '$f' (known: $ALL_FORMATS)" 2 ;; esac
done
case "$count" in ''|*[!0-9]*|0) die "--count must be a positive number" 2 ;; esac
case "$seed" in ''|*[!0-9]*) die "--seed must be a number" 2 ;; esac
parse_size
require_tools qemu-img qemu-io python3 java numfmt

# qemu-img create options for a fresh image of a format
create_options() {
    case "$1" in
        vpc) echo "-o subformat=dynamic,force_size=on" ;;
    esac
}

# RandomWrites runs from the shaded benchmarks jar (the library and its dependencies), with the JIT and
# collector settings the launcher uses for one-shot commands, and, as the launcher has, a class-data
# sharing archive: its own, trained by a few writes into each format (made again when the jar changes).
# Without one the JVM's start alone was about 0.3 s of each run, against qemu-io's 0.05 s.
jar="$BENCH_DIR/target/benchmarks.jar"
cds="$BENCH_DIR/target/random-writes.jsa"
if [ ! -f "$jar" ] || [ -n "$(find "$BENCH_DIR/src" "$BENCH_DIR/pom.xml" "$REPO/vdisk-formats/src" -newer "$jar" -type f -print -quit 2>/dev/null)" ]; then
    log "building $jar"
    ( cd "$REPO" && mvn -q -B -ntp -Pbench package -DskipTests -pl bench -am ) >&2
fi
java_opts="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
if [ ! -f "$cds" ] || [ "$jar" -nt "$cds" ]; then
    log "making the class-data sharing archive $cds"
    train=$(mktemp -d "${TMPDIR:-/tmp}/random-writes-cds.XXXXXX")
    for f in $ALL_FORMATS; do
        # shellcheck disable=SC2046
        qemu-img create -q -f "$f" $(create_options "$f") "$train/t.$f" 64M &&
            java -Xshare:off -XX:DumpLoadedClassList="$train/$f.lst" $java_opts -cp "$jar" \
                org.vdiskload.bench.RandomWrites "$train/t.$f" "$f" 200 1 ||
            die "training run on $f failed"
    done
    cat "$train"/*.lst | awk '!seen[$0]++' > "$train/classes"
    java -Xshare:dump -XX:SharedClassListFile="$train/classes" -XX:SharedArchiveFile="$train/a.jsa" -cp "$jar" >/dev/null 2>&1 ||
        die "could not make the class-data sharing archive"
    mv -f "$train/a.jsa" "$cds"
    rm -rf "$train"
fi
java_cmd="java -XX:SharedArchiveFile='$cds' -Xshare:auto -Xlog:cds=off $java_opts -cp '$jar' org.vdiskload.bench.RandomWrites"

out="$cache/$size/writes"
mkdir -p "$out"
commands="$out/qemu-io-commands.txt"
eval "$java_cmd --qemu-io-commands $bytes $count $seed" > "$commands"
[ "$(grep -c '^write ' "$commands")" = "$count" ] || die "could not make the qemu-io command list"

# check_image FMT FILE: qemu-img check's verdict, "n/a" where qemu has no check for FMT
check_image() {
    local msg rc=0
    msg=$(qemu-img check -f "$1" "$2" 2>&1) || rc=$?
    case "$rc" in
        0) echo ok ;;
        63) echo n/a ;;
        *) echo "FAILED: qemu-img check: $(echo "$msg" | awk 'NF && n++ < 3' | tr '\n' ' ')"; return 1 ;;
    esac
}

qemu_cache=writeback
[ -n "$write_through" ] && qemu_cache=writethrough
log "size $size, $count writes, seed $seed, $runs runs per tool${write_through:+, write-through (qemu-io -t writethrough)}, timer: $([ "$use_hyperfine" = 1 ] && echo hyperfine || echo shell loop)"
printf '%-8s %10s %10s %12s %12s %20s  %s\n' format "qemu-io s" "vdisk s" "qemu-io IOPS" "vdisk IOPS" "ratio (vdisk/qemu s)" "qemu-img check (qemu-io, vdisk)"
status=0
for f in $formats; do
    log "timing $f"
    q_img="$out/qemu-io.$f"
    v_img="$out/vdiskload.$f"
    q_log="$out/qemu-io.$f.out"
    # shellcheck disable=SC2046
    fresh() { echo "rm -f '$1'; qemu-img create -q -f $f $(create_options "$f") '$1' $bytes"; }
    # -t writeback: qemu-io's default is writethrough (a flush after every write); the command list ends
    # with one flush, as RandomWrites does.
    if ! q=$(median_seconds "writes-$f-qemu-io" "$(fresh "$q_img")" "qemu-io -t $qemu_cache -f $f '$q_img' < '$commands' > '$q_log' 2>&1"); then
        printf '%-8s %s\n' "$f" "FAILED: qemu-io failed"
        status=1
    elif [ "$(grep -c 'wrote 4096/4096 bytes' "$q_log" || true)" != "$count" ] || grep -q -i 'fail\|error' "$q_log"; then
        printf '%-8s %s\n' "$f" "FAILED: qemu-io did not complete every write (see $q_log)"
        status=1
    elif ! v=$(median_seconds "writes-$f-vdiskload" "$(fresh "$v_img")" "$java_cmd '$v_img' $f $count $seed $write_through"); then
        printf '%-8s %s\n' "$f" "FAILED: RandomWrites failed (see $out/writes-$f-vdiskload.log)"
        status=1
    elif ! diff=$(qemu-img compare -f "$f" -F "$f" "$q_img" "$v_img" 2>&1); then
        printf '%-8s %s\n' "$f" "FAILED: the images differ: ${diff//$'\n'/ }"
        status=1
    elif ! q_check=$(check_image "$f" "$q_img"); then
        printf '%-8s %s\n' "$f" "qemu-io's image: $q_check"
        status=1
    elif ! v_check=$(check_image "$f" "$v_img"); then
        printf '%-8s %s\n' "$f" "vdiskload's image: $v_check"
        status=1
    else
        printf '%-8s %10s %10s %12s %12s %20s  %s\n' "$f" "$q" "$v" \
            "$(awk -v n="$count" -v t="$q" 'BEGIN { printf "%.0f", n / t }')" \
            "$(awk -v n="$count" -v t="$v" 'BEGIN { printf "%.0f", n / t }')" "$(ratio "$v" "$q")" "$q_check, $v_check"
    fi
    rm -f "$q_img" "$v_img"
done
exit $status
