#!/bin/sh
# VHDX images qemu-img cannot make, written by vhdx_make.py, each with the raw bytes a reader must see
# (FILE.expected.raw; images.txt flag expected=FILE):
#   sector4k.vhdx  4096-byte logical sectors (qemu-img has no option for them; qemu 7.2 refuses to open them)
#   child.vhdx     differencing, parent parent.vhdx (qemu 7.2 cannot open differencing VHDX, so the expected
#                  bytes are the parent's, read by qemu, overlaid with the sectors the script put in the child)
#   wide.vhdx      differencing with 32 MiB blocks, parent wideparent.vhdx: present-sector runs cross a page
#                  of the sector bitmap
#   dirty.vhdx     a log needing replay; qemu refuses it read-only, so besides the script's expected bytes
#                  the test replays a copy with `qemu-img check -r all` and compares (flag qemu-replay)
#   interleave.vhdx  made by qemu-img: 4.5 GiB, 256 MiB blocks, so the BAT has a sector bitmap entry after
#                  16 payload entries; too big to read whole in the suite, so flag patterns=OFF:LEN:BYTE,...
#                  lists what qemu-io wrote and the test reads those ranges and checks the map
#   testdata/vhdx-made.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: vhdx-made.sh DIR}
make="python3 $TESTDATA_DIR/vhdx_make.py"
cd "$dir"
rm -f ./*.vhdx ./*.raw images.txt

$make sector4k sector4k.vhdx sector4k.expected.raw
echo "sector4k.vhdx vhdx expected=sector4k.expected.raw" >> images.txt

qemu-img create -q -f vhdx -o block_size=1M parent.vhdx 8M
qio -f vhdx -c 'write -P 0x71 0 8M' -c 'write -z 6M 1M' parent.vhdx
qemu-img convert -f vhdx -O raw parent.vhdx parent.raw
$make diff parent.vhdx parent.raw child.vhdx child.expected.raw
rm parent.raw
echo "child.vhdx vhdx expected=child.expected.raw" >> images.txt

qemu-img create -q -f vhdx -o block_size=1M wideparent.vhdx 24M
qio -f vhdx -c 'write -P 0x72 0 1M' -c 'write -P 0x73 15M 2M' -c 'write -P 0x74 19M 1M' -c 'write -P 0x75 23M 1M' wideparent.vhdx
qemu-img convert -f vhdx -O raw wideparent.vhdx wideparent.raw
$make diffwide wideparent.vhdx wideparent.raw wide.vhdx wide.expected.raw
rm wideparent.raw
echo "wide.vhdx vhdx expected=wide.expected.raw" >> images.txt

qemu-img create -q -f vhdx -o block_size=1M src.vhdx 8M
qio -f vhdx -c 'write -P 0x61 0 1M' -c 'write -P 0x62 3M 1M' src.vhdx
qemu-img convert -f vhdx -O raw src.vhdx src.raw
$make dirty src.vhdx src.raw dirty.vhdx dirty.expected.raw
rm src.raw src.vhdx
echo "dirty.vhdx vhdx expected=dirty.expected.raw qemu-replay" >> images.txt

qemu-img create -q -f vhdx -o block_size=256M interleave.vhdx 4608M
qio -f vhdx -c 'write -P 0x31 0 64k' -c 'write -P 0x32 4G 1M' -c 'write -P 0x33 4607M 1M' interleave.vhdx
echo "interleave.vhdx vhdx patterns=0:65536:0x31,4294967296:1048576:0x32,4830789632:1048576:0x33" >> images.txt
