#!/bin/bash
# In the vmtest VM: one qcow2 as a block device four ways, side by side — vdiskload --backend kmod (vdisk.ko
# serving it in the kernel), a loop device on the raw equivalent (the ceiling), qemu-nbd -c, and
# vdiskload --backend nbd — with 1 MiB O_DIRECT sequential reads (dd), 4 KiB random reads (fio, qd1 and
# qd16) and 4 KiB random writes into allocated clusters (fio, qd16); then allocating writes into an empty
# qcow2 (mkfs.ext4 and a large copy) through kmod and nbd. Prints the figures and the ratios (bench/README.md).
#
#   bench/kmod-in-vm.sh [--size 256M] [--runs 3] [--fio-seconds 20] [--cache DIR]
#
# Nothing runs this from the test suite. Needs root (vmtest/run boots a VM with qemu).
set -euo pipefail

BENCH_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname "$BENCH_DIR")
NAME=kmod-in-vm.sh
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

size=256M
runs=3
fio_seconds=20
cache=${VDISKLOAD_BENCH_CACHE:-/var/tmp/vdiskload-bench}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=${2:?--size needs a value}; shift 2 ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --fio-seconds) fio_seconds=${2:?--fio-seconds needs a value}; shift 2 ;;
        --cache) cache=${2:?--cache needs a value}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "$NAME: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
case "$fio_seconds" in ''|*[!0-9]*|0) die "--fio-seconds must be a positive number" 2 ;; esac
[ "$(id -u)" = 0 ] || die "needs root (vmtest/run)"
parse_size
# The guest has 2 GiB of RAM; the raw source and the qcow2 are copied into its tmpfs.
[ "$bytes" -le $((384 * 1024 * 1024)) ] || die "--size at most 384M (the images live in the guest's RAM)" 2
case "$cache" in /run/*|/dev/*|/proc/*|/sys/*) die "--cache under $cache is not visible in the guest" 2 ;; esac
"$REPO/scripts/deps.sh" build bench vm
require_tools qemu-img qemu-nbd fio losetup python3 java numfmt
build_launcher
source_image
qcow2="$dir/qcow2.img"
if [ ! -f "$qcow2" ] || [ "$qcow2" -ot "$src" ]; then
    log "creating $qcow2"
    qemu-img convert -f raw -O qcow2 "$src" "$qcow2.tmp" >&2
    mv "$qcow2.tmp" "$qcow2"
fi

guest="$out/kmod-in-vm-guest.sh"
{
    echo "#!/bin/bash"
    echo "set -euo pipefail"
    printf 'repo=%q src=%q qcow2=%q runs=%q fio_seconds=%q\n' "$REPO" "$src" "$qcow2" "$runs" "$fio_seconds"
    cat "$BENCH_DIR/kmod-in-vm.guest"
} > "$guest"
chmod +x "$guest"
results="$out/kmod-in-vm"
rm -rf "$results"
mkdir -p "$results"
log "booting the VM: images copied into its RAM, four devices, dd and fio on each (many minutes)"
"$REPO/vmtest/run" --timeout 5400 --out "$results" "$guest" >&2 || die "the run in the VM failed (see above)"
[ -f "$results/table.txt" ] || die "the guest wrote no table"
echo "kmod in the VM: $size qcow2 (make-source.py data), kernel $(cat "$results/kernel.txt"), $runs dd runs, ${fio_seconds} s of fio per test"
cat "$results/table.txt"
