#!/bin/bash
# Times `vdiskload convert -O FMT` beside `qemu-img convert -O FMT` from the same raw source into each
# format, and checks both outputs with `qemu-img compare` against the source (bench/README.md).
#
#   bench/convert-into-vs-qemu.sh [--size 1G] [--runs 5] [--formats qcow2,vdi,...] [--warm] [--cache DIR]
#
# The raw source is the one convert-vs-qemu.sh uses (CACHE/SIZE/source.raw, made by make-source.py).
# `--size 64M` is a quick run. Nothing runs this from the test suite.
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=convert-into-vs-qemu.sh
ALL_FORMATS="qcow2 qcow2-c qcow vmdk vmdk-stream vdi vpc vhdx"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

size=1G
runs=5
formats=$ALL_FORMATS
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}
warm=0

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
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
        -h|--help) usage 0 ;;
        *) echo "$NAME: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
for f in $formats; do
    case " $ALL_FORMATS " in *" $f "*) ;; *) die "unknown format '$f' (known: $ALL_FORMATS)" 2 ;; esac
done
parse_size
require_tools qemu-img python3 java numfmt
build_launcher
source_image
choose_cache_mode

# qemu's format name and the convert options (the same for both tools) for each benchmark format
qemu_format() {
    case "$1" in
        qcow2|qcow2-c) echo qcow2 ;; qcow) echo qcow ;; vmdk|vmdk-stream) echo vmdk ;;
        vdi) echo vdi ;; vpc) echo vpc ;; vhdx) echo vhdx ;;
    esac
}
convert_options() {
    case "$1" in
        qcow2-c) echo "-c" ;;
        vmdk) echo "-o subformat=monolithicSparse" ;;
        vmdk-stream) echo "-o subformat=streamOptimized" ;;
        # force_size keeps the exact virtual size instead of rounding it to a CHS geometry
        vpc) echo "-o subformat=dynamic,force_size=on" ;;
    esac
}

# writer_status FMT: "ok", or why vdiskload cannot write this format (asks `vdiskload create`).
writer_status() {
    local probe="$out/writer-probe.$1" err
    rm -f "$probe"
    if err=$("$VDISKLOAD" create -f "$1" "$probe" 64M 2>&1 >/dev/null); then rm -f "$probe"; echo ok; return; fi
    rm -f "$probe"
    case "$err" in
        *"not supported"*|*"unknown image format"*) echo "skipped: $1 writer not available" ;;
        *) echo "failed: ${err#vdiskload: }" ;;
    esac
}

# verify FMT FILE: qemu-img compare of FILE (as FMT) against the raw source; prints nothing when identical.
verify() {
    local msg
    if msg=$(qemu-img compare -f raw -F "$1" "$src" "$2" 2>&1); then return 0; fi
    echo "${msg//$'\n'/ }"
    return 1
}

log "size $size, $runs runs per tool, page cache: $cache_mode, timer: $([ "$use_hyperfine" = 1 ] && echo hyperfine || echo shell loop)"
printf '%-12s %10s %12s %24s\n' format "qemu-img s" "vdiskload s" "ratio (vdiskload/qemu)"
status=0
prep=$(prepare_command "$src")
for f in $formats; do
    qfmt=$(qemu_format "$f")
    opts=$(convert_options "$f")
    why=$(writer_status "$qfmt")
    if [ "$why" != ok ]; then
        printf '%-12s %s\n' "$f" "$why"
        case "$why" in skipped:*) ;; *) status=1 ;; esac
        continue
    fi
    log "timing $f"
    q_out="$out/into-qemu.$qfmt"
    v_out="$out/into-vdiskload.$qfmt"
    if ! q=$(median_seconds "into-$f-qemu-img" "rm -f '$q_out'; $prep" "qemu-img convert -f raw -O $qfmt $opts '$src' '$q_out'"); then
        printf '%-12s %s\n' "$f" "FAILED: qemu-img convert failed"
        status=1
    elif ! v=$(median_seconds "into-$f-vdiskload" "rm -f '$v_out'; $prep" "'$VDISKLOAD' convert -f raw -O $qfmt $opts '$src' '$v_out'"); then
        printf '%-12s %s\n' "$f" "FAILED: vdiskload convert failed"
        status=1
    elif ! diff=$(verify "$qfmt" "$q_out"); then
        printf '%-12s %s\n' "$f" "FAILED: qemu-img's output differs from the source: $diff"
        status=1
    elif ! diff=$(verify "$qfmt" "$v_out"); then
        printf '%-12s %s\n' "$f" "FAILED: vdiskload's output differs from the source: $diff"
        status=1
    else
        printf '%-12s %10s %12s %24s   (sizes: %s / %s MiB)\n' "$f" "$q" "$v" "$(ratio "$v" "$q")" \
            "$(( $(du -k "$q_out" | cut -f1) / 1024 ))" "$(( $(du -k "$v_out" | cut -f1) / 1024 ))"
    fi
    rm -f "$q_out" "$v_out"
done
exit $status
