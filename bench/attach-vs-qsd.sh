#!/bin/bash
# `vdiskload FILE` (its fuse backend: a FUSE file served by Java, a loop device on it) beside
# qemu-storage-daemon's FUSE export with a loop device on it, and a loop device on the raw source as the
# ceiling: fio and dd through the three block devices, O_DIRECT (bench/README.md).
#
#   bench/attach-vs-qsd.sh [--size 256M|1G] [--runs 3] [--fio-seconds 10] [--formats qcow2,vmdk,...] [--no-writes]
#
# Nothing runs this from the test suite. Needs root (loop devices, FUSE mounts).
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=attach-vs-qsd.sh
ALL_FORMATS="qcow2 vmdk vhdx vpc vdi qcow raw"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

args=("$@")
size=256M
runs=3
fio_seconds=10
formats=qcow2
writes=1
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    echo "formats: $ALL_FORMATS (default qcow2; 'all' for every one)"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=${2:?--size needs a value}; shift 2 ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --fio-seconds) fio_seconds=${2:?--fio-seconds needs a value}; shift 2 ;;
        --formats) formats=$(echo "${2:?--formats needs a value}" | tr ',' ' '); shift 2 ;;
        --no-writes) writes=0; shift ;;
        --cache) cache=${2:?--cache needs a value}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "$NAME: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
[ "$formats" = all ] && formats=$ALL_FORMATS
for f in $formats; do
    case " $ALL_FORMATS " in *" $f "*) ;; *) die "unknown format '$f' (known: $ALL_FORMATS)" 2 ;; esac
done
case "$fio_seconds" in ''|*[!0-9]*|0) die "--fio-seconds must be a positive number" 2 ;; esac
[ "$(id -u)" = 0 ] || die "needs root (loop devices and FUSE mounts)"
# vdiskload keeps its attachments' state in /run/vdiskload, shared by every checkout on this machine, and a
# test suite running elsewhere (AttachTest's 'vdiskload -D' after each test) would detach ours mid-run.
# So the script runs in a mount namespace of its own with a private /run/vdiskload; the devices and
# their /dev names are the machine's, as usual.
if [ -z "${ATTACH_VS_QSD_PRIVATE:-}" ]; then
    ATTACH_VS_QSD_PRIVATE=1 exec unshare --mount --propagation private -- "$0" "${args[@]}"
fi
mkdir -p /run/vdiskload
mount -t tmpfs -o mode=0755 vdiskload-bench /run/vdiskload
parse_size
mkdir -p "$cache"
exec 8>"$cache/attach-vs-qsd.lock" # two runs would share the export file and fio's output
flock -n 8 || die "another attach-vs-qsd.sh is running"
"$REPO/scripts/deps.sh" build bench
require_tools qemu-img qemu-storage-daemon fio losetup findmnt unshare python3 java numfmt
build_launcher
source_image

create_options() {
    case "$1" in
        vmdk) echo "-o subformat=monolithicSparse" ;;
        # force_size keeps the exact virtual size instead of rounding it to a CHS geometry
        vpc) echo "-o subformat=dynamic,force_size=on" ;;
    esac
}
# image_of F: the cached image (the same files convert-vs-qemu.sh makes)
image_of() {
    local img="$dir/$1.img"
    if [ ! -f "$img" ] || [ "$img" -ot "$src" ]; then
        log "creating $img"
        # shellcheck disable=SC2046
        qemu-img convert -f raw -O "$1" $(create_options "$1") "$src" "$img.tmp" >&2
        mv "$img.tmp" "$img"
    fi
    echo "$img"
}

# --- what is running, so the trap can undo it ---------------------------------------------------------
loops=""      # loop devices made here with losetup
vdl_devs=""   # vdiskload's /dev/NAME
qsd_pid=""
qsd_mnt=""

detach_loop() { losetup -d "$1" 2>/dev/null || true; loops=$(echo "$loops" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ' || true); }
detach_vdl() {
    [ -e "$1" ] && { "$VDISKLOAD" -d "$1" >&2 || true; }
    vdl_devs=$(echo "$vdl_devs" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ' || true)
}
stop_qsd() {
    if [ -n "$qsd_pid" ]; then
        kill "$qsd_pid" 2>/dev/null || true
        wait "$qsd_pid" 2>/dev/null || true
        qsd_pid=""
    fi
    if [ -n "$qsd_mnt" ]; then
        findmnt -n "$qsd_mnt" >/dev/null 2>&1 && umount -l "$qsd_mnt" 2>/dev/null
        rm -f "$qsd_mnt"
        qsd_mnt=""
    fi
}
cleanup() {
    local l d
    for l in $loops; do detach_loop "$l"; done  # first: a loop on a FUSE file must go before its server
    stop_qsd
    for d in $vdl_devs; do detach_vdl "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# raw_loop FILE [rw]: sets dev to a new loop device on a plain file, read-only unless rw
raw_loop() {
    dev=$(losetup --find --show $([ "${2:-}" = rw ] || echo --read-only) "$1")
    loops="$loops $dev"
}

# qsd_attach FMT IMG [rw]: qemu-storage-daemon exporting IMG over FUSE on a regular file; sets dev to a
# loop device on that file
qsd_attach() {
    local fmt=$1 img=$2 mode=${3:-ro} ro=on i
    [ "$mode" = rw ] && ro=off
    qsd_mnt="$out/qsd-export"
    rm -f "$qsd_mnt"
    touch "$qsd_mnt"
    qemu-storage-daemon --blockdev "driver=file,node-name=f,filename=$img,read-only=$ro" \
        --blockdev "driver=$fmt,node-name=d,file=f,read-only=$ro" \
        --export "type=fuse,id=e,node-name=d,mountpoint=$qsd_mnt,writable=$([ "$mode" = rw ] && echo on || echo off)" \
        >"$out/qsd.log" 2>&1 &
    qsd_pid=$!
    for i in $(seq 200); do
        findmnt -n "$qsd_mnt" >/dev/null 2>&1 && break
        kill -0 "$qsd_pid" 2>/dev/null || die "qemu-storage-daemon exited: $(tail -n 1 "$out/qsd.log")"
        sleep 0.05
    done
    findmnt -n "$qsd_mnt" >/dev/null 2>&1 || die "qemu-storage-daemon did not mount $qsd_mnt (see $out/qsd.log)"
    raw_loop "$qsd_mnt" "$mode"
}

# on_vdl IMG MODE COMMAND...: runs COMMAND ... LOOPDEV on vdiskload's device for IMG (attached read-only,
# or read-write with MODE rw; kept in $vdl_dev for the next measurement) and sets result to its output.
# Returns 2 if vdiskload refuses to attach.
vdl_dev=""
vdl_loop=""
on_vdl() {
    local img=$1 mode=$2
    shift 2
    if [ -z "$vdl_dev" ]; then
        if ! vdl_dev=$("$VDISKLOAD" $([ "$mode" = rw ] || echo -r) --show "$img" 2>"$out/attach.err" | tail -n 1) || [ -z "$vdl_dev" ]; then
            vdl_dev=""
            log "vdiskload cannot attach $img: $(tail -n 1 "$out/attach.err")"
            return 2
        fi
        vdl_devs="$vdl_devs $vdl_dev"
        vdl_loop=$(readlink -f "$vdl_dev")
    fi
    result=$("$@" "$vdl_loop")
}

# seq_seconds DEV: median over --runs of a whole-device dd with 1 MiB O_DIRECT reads (one warm-up first)
seq_seconds() {
    local dev=$1 i t0 t1 times=""
    dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
    for i in $(seq "$runs"); do
        t0=$(date +%s%N)
        dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
        t1=$(date +%s%N)
        times="$times $((t1 - t0))"
    done
    # shellcheck disable=SC2086
    printf '%s\n' $times | sort -n | awk '{ t[NR] = $1 } END {
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; printf "%.3f\n", m / 1e9 }'
}

# fio_iops RW DEPTH DEV: 4 KiB random RW (randread|randwrite), O_DIRECT, libaio, --fio-seconds after 1 s ramp
fio_iops() {
    local rw=$1 depth=$2 dev=$3 json="$out/fio.json" key=read
    [ "$rw" = randwrite ] && key=write
    fio --name="$rw" --filename="$dev" --rw="$rw" --bs=4k --direct=1 --ioengine=libaio --iodepth="$depth" \
        --time_based --ramp_time=1 --runtime="$fio_seconds" --randseed=42 --norandommap \
        --output-format=json --output="$json" >/dev/null || return 1
    python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]["iops"])' "$json" "$key"
}

mbs() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", b / 1e6 / t }'; }
row() { # row FORMAT TEST RAW QSD VDL [LOWER-IS-BETTER]
    local r_q r_r
    if [ "${6:-}" = time ]; then r_q=$(ratio "$4" "$5"); r_r=$(ratio "$3" "$5"); else r_q=$(ratio "$5" "$4"); r_r=$(ratio "$5" "$3"); fi
    printf '%-6s %-22s %10s %10s %10s %8s %8s\n' "$1" "$2" "$3" "$4" "$5" "$r_q" "$r_r"
}

check_of() { # check_of FMT IMG: qemu-img check's verdict (n/a where qemu has no check for the format)
    local o
    case "$1" in raw|qcow|vpc) echo n/a; return ;; esac
    if o=$(qemu-img check -f "$1" "$2" 2>&1); then echo ok; else echo "FAILED"; echo "$o" >"$out/check-$1-$(basename "$2").log"; fi
}

# reads F: sequential and random reads on the three devices, back to back
reads() {
    local f=$1 img raw_dev qsd_dev t_raw t_qsd t_vdl d r_raw r_qsd
    img=$(image_of "$f")
    cat "$src" "$img" >/dev/null
    raw_loop "$src"; raw_dev=$dev
    qsd_attach "$f" "$img"; qsd_dev=$dev
    # every device must show the source's bytes
    cmp -s "$src" "$qsd_dev" || { echo "$f: FAILED: qemu-storage-daemon's device differs from the source"; return 1; }
    on_vdl "$img" ro cmp -s "$src" || { echo "$f: FAILED: vdiskload's device differs from the source"; return 1; }
    t_raw=$(seq_seconds "$raw_dev")
    t_qsd=$(seq_seconds "$qsd_dev")
    on_vdl "$img" ro seq_seconds; t_vdl=$result
    row "$f" "seq 1M read MB/s" "$(mbs "$t_raw")" "$(mbs "$t_qsd")" "$(mbs "$t_vdl")"
    row "$f" "seq 1M read s" "$t_raw" "$t_qsd" "$t_vdl" time
    for d in 1 16; do
        r_raw=$(fio_iops randread $d "$raw_dev")
        r_qsd=$(fio_iops randread $d "$qsd_dev")
        on_vdl "$img" ro fio_iops randread $d
        row "$f" "4K randread qd$d IOPS" "$r_raw" "$r_qsd" "$result"
    done
    detach_loop "$raw_dev"
    detach_loop "$qsd_dev"
    stop_qsd
    detach_vdl "$vdl_dev"
    vdl_dev=""
}

# writes F: random writes, each device on a fresh copy (the raw loop on a copy of the source), then
# qemu-img check of both images
writes() {
    local f=$1 img d r_raw r_qsd r_vdl c_qsd c_vdl w_raw="$out/w-raw.img" w_qsd w_vdl
    img=$(image_of "$f")
    w_qsd="$out/w-qsd.$f" w_vdl="$out/w-vdl.$f"
    for d in 1 16; do
        cp "$src" "$w_raw"
        raw_loop "$w_raw" rw
        r_raw=$(fio_iops randwrite $d "$dev")
        detach_loop "$dev"

        cp "$img" "$w_qsd"
        qsd_attach "$f" "$w_qsd" rw
        r_qsd=$(fio_iops randwrite $d "$dev")
        detach_loop "$dev"
        stop_qsd
        c_qsd=$(check_of "$f" "$w_qsd")

        cp "$img" "$w_vdl"
        vdl_dev=""
        if on_vdl "$w_vdl" rw fio_iops randwrite $d; then
            r_vdl=$result
            detach_vdl "$vdl_dev"
            vdl_dev=""
            c_vdl=$(check_of "$f" "$w_vdl")
            row "$f" "4K randwrite qd$d IOPS" "$r_raw" "$r_qsd" "$r_vdl"
        else # vdiskload cannot write this format in place
            c_vdl=-
            printf '%-6s %-22s %10s %10s %10s %8s %8s\n' "$f" "4K randwrite qd$d IOPS" "$r_raw" "$r_qsd" n/a - -
        fi
        printf '%-6s %-22s %10s %10s %10s\n' "$f" "  qemu-img check" - "$c_qsd" "$c_vdl"
        case "$c_qsd $c_vdl" in *FAILED*) status=1 ;; esac
    done
    rm -f "$w_raw" "$w_qsd" "$w_vdl"
}

log "size $size, dd $runs runs (median), fio ${fio_seconds}s per test; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-22s %10s %10s %10s %8s %8s\n' format test "raw loop" QSD vdiskload vdl/QSD vdl/raw
status=0
for f in $formats; do
    log "$f: reads"
    reads "$f" || status=1
    [ "$writes" = 1 ] || continue
    log "$f: writes"
    writes "$f"
done
log "done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
