#!/bin/bash
# `vdiskload serve` beside `qemu-nbd` on the same images (raw, qcow2, compressed qcow2, vmdk, vhdx made by
# qemu-img from one mixed-content source): whole-disk nbdcopy throughput and 4 KiB random-read IOPS with
# fio's nbd engine at queue depth 1 and 16. Both servers read-only on Unix sockets (bench/README.md).
#
#   bench/serve-vs-qemu-nbd.sh [--size 64M] [--runs 3] [--fio-seconds 5] [--formats raw,qcow2,...]
#
# Nothing runs this from the test suite.
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=serve-vs-qemu-nbd.sh
ALL_FORMATS="raw qcow2 qcow2-c vmdk vhdx"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

size=64M
runs=3
fio_seconds=5
formats=$ALL_FORMATS
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    echo "formats: $ALL_FORMATS"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=${2:?--size needs a value}; shift 2 ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --fio-seconds) fio_seconds=${2:?--fio-seconds needs a value}; shift 2 ;;
        --formats) formats=$(echo "${2:?--formats needs a value}" | tr ',' ' '); shift 2 ;;
        --cache) cache=${2:?--cache needs a value}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "$NAME: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
for f in $formats; do
    case " $ALL_FORMATS " in *" $f "*) ;; *) die "unknown format '$f' (known: $ALL_FORMATS)" 2 ;; esac
done
case "$fio_seconds" in ''|*[!0-9]*|0) die "--fio-seconds must be a positive number" 2 ;; esac
parse_size
"$REPO/scripts/deps.sh" build bench
require_tools qemu-img qemu-nbd nbdcopy nbdinfo fio python3 java numfmt
[[ "$(fio --enghelp 2>/dev/null)" =~ (^|[[:space:]])nbd($|[[:space:]]) ]] || die "this fio has no nbd engine"
build_launcher
source_image

qemu_format() {
    case "$1" in raw) echo raw ;; qcow2|qcow2-c) echo qcow2 ;; vmdk) echo vmdk ;; vhdx) echo vhdx ;; esac
}
create_options() {
    case "$1" in qcow2-c) echo "-c" ;; vmdk) echo "-o subformat=monolithicSparse" ;; esac
}
# image_of F: the cached image (the same files convert-vs-qemu.sh makes)
image_of() {
    local img="$dir/$1.img"
    if [ ! -f "$img" ] || [ "$img" -ot "$src" ]; then
        log "creating $img"
        # shellcheck disable=SC2046
        qemu-img convert -f raw -O "$(qemu_format "$1")" $(create_options "$1") "$src" "$img.tmp" >&2
        mv "$img.tmp" "$img"
    fi
    echo "$img"
}

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start_server TOOL FMT IMG SOCK: runs a read-only, persistent server (8 clients at once, so nbdcopy's
# multi-connection works on both) and waits until it answers.
start_server() {
    local tool=$1 fmt=$2 img=$3 sock=$4 i
    rm -f "$sock"
    if [ "$tool" = qemu-nbd ]; then
        qemu-nbd -r -t -e 8 -f "$fmt" -x disk -k "$sock" "$img" >"$out/serve-$tool.log" 2>&1 &
    else
        "$VDISKLOAD" serve -r -t -e 8 -f "$fmt" -x disk -k "$sock" "$img" >"$out/serve-$tool.log" 2>&1 &
    fi
    server_pid=$!
    for i in $(seq 200); do
        nbdinfo --size "nbd+unix:///disk?socket=$sock" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "$tool did not start serving $img (see $out/serve-$tool.log)"
}

# fio_iops URI DEPTH: 4 KiB random reads for --fio-seconds (after a 1 s warm-up), prints the IOPS
fio_iops() {
    local uri=$1 depth=$2 json="$out/fio.json"
    fio --name=warm --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth="$depth" \
        --time_based --runtime=1 --output-format=json >/dev/null
    fio --name=randread --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth="$depth" \
        --time_based --runtime="$fio_seconds" --randseed=42 --output-format=json --output="$json" >/dev/null
    python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' "$json"
}

# server_cpu_ticks: user + system CPU the server process has used so far, in clock ticks
server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }

# measure TOOL F: sets mibs, cpu (server CPU ms per nbdcopy), iops1, iops16 for TOOL serving format F
measure() {
    local tool=$1 f=$2 img sock uri t c0
    img=$(image_of "$f")
    sock="$out/$tool.sock"
    uri="nbd+unix:///disk?socket=$sock"
    cat "$img" >/dev/null
    start_server "$tool" "$(qemu_format "$f")" "$img" "$sock"
    c0=$(server_cpu_ticks)
    t=$(median_seconds "serve-$f-$tool" "true" "nbdcopy '$uri' null:")
    # the mean over every copy, the warm-up included: what a fresh server spends (JIT warm-up and all)
    cpu=$(awk -v c="$(( $(server_cpu_ticks) - c0 ))" -v hz="$(getconf CLK_TCK)" -v n="$(( runs + 1 ))" \
        'BEGIN { printf "%.0f", c * 1000 / hz / n }')
    mibs=$(awk -v b="$bytes" -v t="$t" 'BEGIN { printf "%.0f", b / 1048576 / t }')
    iops1=$(fio_iops "$uri" 1)
    iops16=$(fio_iops "$uri" 16)
    stop_server
}

# nbdcopy must read the same bytes from both servers as the source holds
check_content() {
    local f=$1 tool sock
    for tool in qemu-nbd vdiskload; do
        sock="$out/$tool.sock"
        start_server "$tool" "$(qemu_format "$f")" "$(image_of "$f")" "$sock"
        nbdcopy "nbd+unix:///disk?socket=$sock" "$out/copy.raw"
        stop_server
        cmp -s "$src" "$out/copy.raw" || { rm -f "$out/copy.raw"; return 1; }
    done
    rm -f "$out/copy.raw"
}

log "size $size, nbdcopy $runs runs (median), fio ${fio_seconds}s per depth, timer: $([ "$use_hyperfine" = 1 ] && echo hyperfine || echo shell loop)"
printf '%-8s %21s %21s %21s %21s\n' "" "nbdcopy MiB/s" "server CPU ms/copy" "4K randread IOPS qd1" "4K randread IOPS qd16"
printf '%-8s %7s %7s %5s %7s %7s %5s %7s %7s %5s %7s %7s %5s\n' format qemu vdl ratio qemu vdl ratio qemu vdl ratio qemu vdl ratio
status=0
for f in $formats; do
    log "serving $f"
    if ! check_content "$f"; then
        printf '%-8s %s\n' "$f" "FAILED: nbdcopy from a server differs from the source"
        status=1
        continue
    fi
    measure qemu-nbd "$f"
    q_mibs=$mibs q_cpu=$cpu q_iops1=$iops1 q_iops16=$iops16
    measure vdiskload "$f"
    printf '%-8s %7s %7s %5s %7s %7s %5s %7s %7s %5s %7s %7s %5s\n' "$f" \
        "$q_mibs" "$mibs" "$(ratio "$mibs" "$q_mibs")" \
        "$q_cpu" "$cpu" "$(ratio "$q_cpu" "$cpu")" \
        "$q_iops1" "$iops1" "$(ratio "$iops1" "$q_iops1")" \
        "$q_iops16" "$iops16" "$(ratio "$iops16" "$q_iops16")"
done
exit $status
