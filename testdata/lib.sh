# Shared helpers for the testdata scripts (sourced, POSIX sh).
set -e
TESTDATA_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
"$TESTDATA_DIR/../scripts/deps.sh" test

# pattern FILE OFFSET LENGTH BYTE: writes LENGTH bytes of BYTE at OFFSET with qemu-io (format from qemu's probe)
qio() { qemu-io "$@" >/dev/null; }
