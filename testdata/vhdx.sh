#!/bin/sh
# VHDX images qemu-img makes: dynamic with 1, 32 and 256 MiB blocks, fixed, block_state_zero=off, a larger
# log, an empty one. (A disk large enough to interleave sector bitmap entries in its BAT is in vhdx-made.sh,
# checked by ranges: reading all of it would slow the suite.)
#   testdata/vhdx.sh DIR   (writes DIR/images.txt)
#
# Every image is flagged no-map: qemu 7.2's vhdx driver has no block status, so `qemu-img map` reports the
# whole disk as data. Instead each line carries written=OFF:LEN,... (the ranges written with a non-zero
# pattern) and zeroed=OFF:LEN,... (written as zeros); VhdxMapTest checks our map against them.
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: vhdx.sh DIR}
cd "$dir"
rm -f ./*.vhdx images.txt

M=1048576
# mk NAME SIZE OPTIONS: creates an image
mk() { qemu-img create -q -f vhdx -o "$3" "$1" "$2"; }

mk dyn-1m.vhdx 24M block_size=1M
qio -f vhdx -c 'write -P 0x11 0 64k' -c 'write -P 0x12 1048064 1024' -c 'write -z 5M 1M' \
    -c 'write -P 0x13 8M 3M' -c 'write -P 0x14 25165312 512' dyn-1m.vhdx
echo "dyn-1m.vhdx vhdx no-map written=0:65536,1048064:1024,$((8*M)):$((3*M)),25165312:512 zeroed=$((5*M)):$M" >> images.txt

mk dyn-32m.vhdx 100M block_size=32M
qio -f vhdx -c 'write -P 0x21 4k 4k' -c 'write -P 0x22 64M 1M' -c 'write -P 0x23 104853504 4096' dyn-32m.vhdx
echo "dyn-32m.vhdx vhdx no-map written=4096:4096,$((64*M)):$M,104853504:4096" >> images.txt

mk dyn-256m.vhdx 600M block_size=256M
qio -f vhdx -c 'write -P 0x31 0 64k' -c 'write -P 0x32 300M 1M' -c 'write -P 0x33 599M 1M' dyn-256m.vhdx
echo "dyn-256m.vhdx vhdx no-map written=0:65536,$((300*M)):$M,$((599*M)):$M" >> images.txt

mk fixed.vhdx 8M subformat=fixed
qio -f vhdx -c 'write -P 0x41 1M 1M' -c 'write -P 0x42 7M 512' fixed.vhdx
echo "fixed.vhdx vhdx no-map written=$M:$M,$((7*M)):512" >> images.txt

mk nozero.vhdx 16M block_size=2M,block_state_zero=off
qio -f vhdx -c 'write -P 0x51 3M 64k' -c 'write -z 6M 2M' nozero.vhdx
echo "nozero.vhdx vhdx no-map written=$((3*M)):65536 zeroed=$((6*M)):$((2*M))" >> images.txt

mk biglog.vhdx 8M block_size=4M,log_size=4M
qio -f vhdx -c 'write -P 0x61 0 4k' biglog.vhdx
echo "biglog.vhdx vhdx no-map written=0:4096" >> images.txt

mk empty.vhdx 3M block_size=1M
echo "empty.vhdx vhdx no-map" >> images.txt
