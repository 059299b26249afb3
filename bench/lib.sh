# Shared by bench/convert-into-vs-qemu.sh and bench/random-writes-vs-qemu.sh (sourced, not run).
# Expects: BENCH_DIR, REPO, NAME (the script's name for messages), size, runs, cache, warm.

VDISKLOAD="$REPO/vdiskload"

log() { echo "bench: $*" >&2; }
die() { echo "$NAME: $1" >&2; exit "${2:-1}"; }

# parse_size: sets bytes from $size (a positive multiple of 64 KiB)
parse_size() {
    bytes=$(numfmt --from=iec "$size" 2>/dev/null) || die "bad --size '$size' (e.g. 64M, 1G)" 2
    if [ "$bytes" -le 0 ] || [ $((bytes % 65536)) -ne 0 ]; then die "--size must be a positive multiple of 64K" 2; fi
    case "$runs" in ''|*[!0-9]*|0) die "--runs must be a positive number" 2 ;; esac
}

# require_tools TOOL...: every tool must be on PATH; hyperfine is used when present.
require_tools() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || die "$tool is required"; done
    use_hyperfine=0
    command -v hyperfine >/dev/null 2>&1 && use_hyperfine=1
    return 0
}

# Builds the launcher's jar and CDS archive now, so no build lands inside a timed run.
build_launcher() {
    "$VDISKLOAD" --version >/dev/null
    if [ -n "$("$VDISKLOAD" --version 2>&1 >/dev/null)" ]; then
        die "the launcher still builds or warns on every start; timings would include that"
    fi
}

# source_image: the cached raw source of $size made by make-source.py (as convert-vs-qemu.sh makes it),
# in $dir; sets src.
source_image() {
    dir="$cache/$size"
    out="$dir/out"
    mkdir -p "$dir" "$out"
    src="$dir/source.raw"
    local stamp="$dir/source.stamp"
    local want_stamp
    want_stamp="$bytes $(sha256sum "$BENCH_DIR/make-source.py" | cut -c1-16)"
    if [ ! -f "$src" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
        log "generating $src ($size)"
        rm -f "$dir"/*.img "$stamp"
        python3 "$BENCH_DIR/make-source.py" "$src" "$bytes"
        echo "$want_stamp" > "$stamp"
    fi
}

# Cold runs need to drop the page cache, which a container usually may not; then (or with --warm)
# every run of both tools starts with the input read into the cache the same way.
choose_cache_mode() {
    if [ "$warm" = 0 ] && sync && (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
        cache_mode=cold
    else
        cache_mode=warm
    fi
}
# prepare_command FILE: the shell command run before every timed run that reads FILE
prepare_command() {
    # sync either way: the page cache must not hold the previous run's output still being written back
    # (the first tool's last output would otherwise be written back while the second tool is timed).
    if [ "$cache_mode" = cold ]; then echo "sync; echo 3 > /proc/sys/vm/drop_caches"; else echo "sync; cat '$1' > /dev/null"; fi
}

# median_seconds NAME PREPARE COMMAND: runs COMMAND $runs times after PREPARE (plus one warm-up),
# prints the median wall time; logs in $out/NAME.log (and .json with hyperfine).
median_seconds() {
    local name=$1 prepare=$2 command=$3
    if [ "$use_hyperfine" = 1 ]; then
        local json="$out/$name.json"
        hyperfine --shell bash --style basic --warmup 1 --runs "$runs" --prepare "$prepare" --export-json "$json" \
            --command-name "$name" "$command" >"$out/$name.log" 2>&1 || { tail -n 5 "$out/$name.log" >&2; return 1; }
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$json"
        return
    fi
    local times="" i t0 t1
    bash -c "$prepare" || return 1
    bash -c "$command" >"$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; return 1; }
    for i in $(seq "$runs"); do
        bash -c "$prepare" || return 1
        t0=$(date +%s%N)
        bash -c "$command" >"$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; return 1; }
        t1=$(date +%s%N)
        times="$times $(( t1 - t0 ))"
    done
    # shellcheck disable=SC2086
    printf '%s\n' $times | sort -n | awk '{ t[NR] = $1 } END {
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; printf "%.3f\n", m / 1e9 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
