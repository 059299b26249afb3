#!/bin/bash
# Times `vdiskload convert -O raw` beside `qemu-img convert -O raw` on the same images, one per format,
# all made by qemu-img from one raw source, and checks both outputs are byte-identical (bench/README.md).
#
#   bench/convert-vs-qemu.sh [--size 1G] [--runs 5] [--formats raw,qcow2,...] [--warm] [--cache DIR]
#                            [--jmh [--jmh-args 'JMH OPTIONS']] [--no-install]
#
# The default 1 GiB run is long (minutes per format, more the first time when the images are made);
# `--size 64M` is a quick run. --jmh also runs the JMH read/map benchmarks on each image.
# Nothing runs this from the test suite.
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=convert-vs-qemu.sh
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
ALL_FORMATS="raw qcow2 qcow2-c qcow vmdk vmdk-stream vdi vpc vhdx"

size=1G
runs=5
formats=$ALL_FORMATS
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}
install=1
warm=0
jmh=0
jmh_args=""

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    echo "formats: $ALL_FORMATS"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=${2:?--size needs a value}; shift 2 ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --formats) formats=$(echo "${2:?--formats needs a value}" | tr ',' ' '); shift 2 ;;
        --cache) cache=${2:?--cache needs a value}; shift 2 ;;
        --warm) warm=1; shift ;;
        --jmh) jmh=1; shift ;;
        --jmh-args) jmh_args=${2?--jmh-args needs a value}; shift 2 ;;
        --no-install) install=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "convert-vs-qemu.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done

for f in $formats; do
    case " $ALL_FORMATS " in *" $f "*) ;; *) die "unknown format '$f' (known: $ALL_FORMATS)" 2 ;; esac
done
parse_size

# ---- tools -------------------------------------------------------------------------------------
if [ "$install" = 1 ]; then
    "$REPO/scripts/deps.sh" build demo
    missing=""
    command -v python3 >/dev/null 2>&1 || missing="$missing python3"
    command -v hyperfine >/dev/null 2>&1 || missing="$missing hyperfine"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing$missing"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >&2 || true
            # hyperfine is optional: without it the script times runs itself.
            # shellcheck disable=SC2086
            apt-get install -y -qq --no-install-recommends $missing >&2 || log "could not install$missing"
        else
            log "not root: cannot install$missing"
        fi
    fi
fi
require_tools qemu-img python3 java cmp numfmt
build_launcher

# ---- images ------------------------------------------------------------------------------------
source_image

# qemu's format name and qemu-img convert options for each benchmark format
qemu_format() {
    case "$1" in
        raw) echo raw ;; qcow2|qcow2-c) echo qcow2 ;; qcow) echo qcow ;; vmdk|vmdk-stream) echo vmdk ;;
        vdi) echo vdi ;; vpc) echo vpc ;; vhdx) echo vhdx ;;
    esac
}
create_options() {
    case "$1" in
        qcow2-c) echo "-c" ;;
        vmdk) echo "-o subformat=monolithicSparse" ;;
        vmdk-stream) echo "-o subformat=streamOptimized" ;;
        # force_size keeps the exact virtual size instead of rounding it to a CHS geometry
        vpc) echo "-o subformat=dynamic,force_size=on" ;;
    esac
}

image_of() {
    local f=$1
    if [ "$f" = raw ]; then echo "$src"; return; fi
    local img="$dir/$f.img"
    if [ ! -f "$img" ] || [ "$img" -ot "$src" ]; then
        log "creating $img"
        # shellcheck disable=SC2046
        qemu-img convert -f raw -O "$(qemu_format "$f")" $(create_options "$f") "$src" "$img.tmp" >&2
        mv "$img.tmp" "$img"
    fi
    echo "$img"
}

# ---- page cache ---------------------------------------------------------------------------------
# Cold runs need to drop the page cache, which a container usually may not; then (or with --warm)
# every run of both tools starts with the image read into the cache the same way.
choose_cache_mode

# ---- timing -------------------------------------------------------------------------------------

# reader_status FMT IMAGE: "ok", or why vdiskload cannot read this image.
reader_status() {
    local err
    if err=$("$VDISKLOAD" info -f "$1" "$2" 2>&1 >/dev/null); then echo ok; return; fi
    case "$err" in
        *"unknown image format '$1'"*) echo "skipped: $1 reader not available" ;;
        *) echo "failed: ${err#vdiskload: }" ;;
    esac
}

log "size $size, $runs runs per tool, page cache: $cache_mode, timer: $([ "$use_hyperfine" = 1 ] && echo hyperfine || echo shell loop)"
printf '%-12s %10s %12s %24s\n' format "qemu-img s" "vdiskload s" "ratio (vdiskload/qemu)"
status=0
readable=""
for f in $formats; do
    qfmt=$(qemu_format "$f")
    img=$(image_of "$f")
    why=$(reader_status "$qfmt" "$img")
    if [ "$why" != ok ]; then
        printf '%-12s %s\n' "$f" "$why"
        case "$why" in skipped:*) ;; *) status=1 ;; esac
        continue
    fi
    readable="$readable $f"
    log "timing $f"
    q_out="$out/qemu.raw"
    v_out="$out/vdiskload.raw"
    prep=$(prepare_command "$img")
    if ! q=$(median_seconds "$f-qemu-img" "rm -f '$q_out'; $prep" "qemu-img convert -f $qfmt -O raw '$img' '$q_out'"); then
        printf '%-12s %s\n' "$f" "FAILED: qemu-img convert failed"
        status=1
    elif ! v=$(median_seconds "$f-vdiskload" "rm -f '$v_out'; $prep" "'$VDISKLOAD' convert -f $qfmt -O raw '$img' '$v_out'"); then
        printf '%-12s %s\n' "$f" "FAILED: vdiskload convert failed"
        status=1
    elif ! cmp -s "$q_out" "$v_out"; then
        printf '%-12s %s\n' "$f" "FAILED: outputs differ ($(cmp "$q_out" "$v_out" 2>&1 | head -n 1))"
        status=1
    else
        printf '%-12s %10s %12s %24s\n' "$f" "$q" "$v" "$(awk -v v="$v" -v q="$q" 'BEGIN { printf "%.2f", v / q }')"
    fi
    rm -f "$q_out" "$v_out"
done

# ---- JMH ----------------------------------------------------------------------------------------
if [ "$jmh" = 1 ] && [ -n "$readable" ]; then
    jar="$BENCH_DIR/target/benchmarks.jar"
    if [ ! -f "$jar" ] || [ -n "$(find "$BENCH_DIR/src" "$BENCH_DIR/pom.xml" "$REPO/vdisk-formats/src" -newer "$jar" -type f -print -quit 2>/dev/null)" ]; then
        log "building $jar"
        ( cd "$REPO" && mvn -q -B -ntp -Pbench package -DskipTests -pl bench -am ) >&2
    fi
    echo
    printf '%-12s %16s %16s %12s\n' format "seq 1M MiB/s" "rand 4K IOPS" "map ms"
    for f in $readable; do
        csv="$out/$f-jmh.csv"
        log "JMH on $f (log: $out/$f-jmh.log)"
        # shellcheck disable=SC2086
        if ! java -jar "$jar" -p image="$(image_of "$f")" -p format="$(qemu_format "$f")" -rf csv -rff "$csv" $jmh_args \
            >"$out/$f-jmh.log" 2>&1 || [ ! -s "$csv" ]; then
            printf '%-12s %s\n' "$f" "FAILED: JMH (see $out/$f-jmh.log)"
            status=1
            continue
        fi
        # csv: "Benchmark","Mode","Threads","Samples","Score","Score Error (99.9%)","Unit",params...
        score() { awk -F, -v b="\"org.vdiskload.bench.$1\"" '$1 == b { printf "%.1f", $5 }' "$csv"; }
        printf '%-12s %16s %16s %12s\n' "$f" "$(score ReadBenchmark.sequentialRead1M)" \
            "$(score ReadBenchmark.randomRead4K)" "$(score MapBenchmark.mapWholeImage)"
    done
fi
exit $status
