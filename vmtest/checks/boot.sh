#!/bin/sh
# The guest runs the kernel vmtest/run discovered, has the host root over 9p, and runs the host's Java.
set -e
[ "$(uname -r)" = "$VDL_KERNEL" ] || { echo "uname -r is $(uname -r), expected $VDL_KERNEL"; exit 1; }
grep -qw 9p /proc/filesystems || { echo "no 9p in /proc/filesystems"; exit 1; }
grep -q ' / 9p ' /proc/mounts || { echo "/ is not the 9p host root"; cat /proc/mounts; exit 1; }
start=$(date +%s%N)
java -version 2>&1 | tee java.txt
grep -q 'version "' java.txt
echo "java -version took $(( ($(date +%s%N) - start) / 1000000 )) ms"
