#!/bin/sh
# qcow (version 1) images: plain, compressed, odd sizes, and backing chains.
#   testdata/qcow.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: qcow.sh DIR}
cd "$dir"
setfield() { python3 "$TESTDATA_DIR/structpatch.py" "$@"; }
# qemu-img convert -c to qcow: qemu 7.2 writes every cluster, then fails its final zero-length
# compressed write (qcow v1 refuses it) and exits 1 without a message; compare proves the copy complete.
compress() { qemu-img convert -q -c -f qcow -O qcow "$1" "$2" || qemu-img compare -q -f qcow -F qcow "$1" "$2"; }
rm -f ./*.qcow ./*.qcow2 ./*.raw images.txt

# 8 MiB, 4 KiB clusters, 512-entry L2 tables (2 MiB each): data in several tables, a partial cluster,
# a write across an L2 table boundary, written zeros (qcow has no zero clusters: they are data), the last sector.
qemu-img create -q -f qcow plain.qcow 8M
qio -f qcow -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 1536' -c 'write -P 0x33 2093056 8k' \
    -c 'write -z 5M 64k' -c 'write -P 0x44 8388096 512' plain.qcow
echo "plain.qcow qcow" >> images.txt

# The same, every cluster zlib-compressed (raw deflate); zero clusters are left out by convert.
compress plain.qcow compressed.qcow
echo "compressed.qcow qcow" >> images.txt

# Compressed clusters overwritten in part: qemu decompresses them into new plain clusters.
compress plain.qcow mixed.qcow
qio -f qcow -c 'write -P 0x55 4k 512' -c 'write -P 0x66 2M 4k' mixed.qcow
echo "mixed.qcow qcow" >> images.txt

qemu-img create -q -f qcow empty.qcow 3M
echo "empty.qcow qcow" >> images.txt

# A stored size that is not a multiple of 512: qemu uses whole sectors only (rounds down).
qemu-img create -q -f qcow odd.qcow 4M
qio -f qcow -c 'write -P 0x77 4190208 4k' odd.qcow
setfield odd.qcow 24 '>Q' 4194000
echo "odd.qcow qcow" >> images.txt

# Over a raw backing file (qemu then picks 512-byte clusters and 4096-entry L2 tables); the backing
# file is shorter than the overlay, so the tail reads as zeros.
qemu-img create -q -f raw base.raw 3M
qio -f raw -c 'write -P 0xa1 0 3M' base.raw
qemu-img create -q -f qcow -b base.raw -F raw over-raw.qcow 4M
qio -f qcow -c 'write -P 0xb2 4k 8k' -c 'write -P 0xb3 3584k 4k' over-raw.qcow
echo "over-raw.qcow qcow" >> images.txt

# Over a qcow backing file: qcow records no backing format, so this opens only with backing-format
# given (QcowBackingTest checks the refusal without it).
qemu-img create -q -f qcow base.qcow 4M
qio -f qcow -c 'write -P 0xc1 0 4M' base.qcow
qemu-img create -q -f qcow -b base.qcow -F qcow over-qcow.qcow 4M
qio -f qcow -c 'write -P 0xd2 1M 64k' over-qcow.qcow
echo "over-qcow.qcow qcow backing-format=qcow" >> images.txt

# Over a qcow2 backing file: likewise refused without backing-format (the CVE-2008-2004 rule).
qemu-img create -q -f qcow2 base.qcow2 4M
qio -f qcow2 -c 'write -P 0xe1 0 1M' base.qcow2
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 over-qcow2.qcow 4M
qio -f qcow -c 'write -P 0xe2 64k 4k' over-qcow2.qcow
echo "over-qcow2.qcow qcow backing-format=qcow2" >> images.txt

# Cluster and L2 table sizes qemu-img cannot choose (it always makes 4 KiB/512 or 512/4096), written
# by a small script: 64 KiB clusters; 512-byte clusters with 64-entry tables (many L1 entries, most
# empty); 8 KiB clusters with a size that ends inside a cluster.
python3 "$TESTDATA_DIR/qcow-geometry.py" c64k.qcow 16 13 16777216
python3 "$TESTDATA_DIR/qcow-geometry.py" c512.qcow 9 6 51200000
python3 "$TESTDATA_DIR/qcow-geometry.py" c8k.qcow 13 7 3000000
printf '%s qcow\n' c64k.qcow c512.qcow c8k.qcow >> images.txt
