#!/bin/sh
# qcow2 images: every variant qemu-img 7.2 makes (v2/v3, cluster sizes 512 B..2 MiB, zlib/zstd
# compression, extended L2, zero clusters, preallocation, refcount widths, lazy refcounts and the
# dirty bit, internal snapshots, backing chains), plus a few patched with qcow2_patch.py.
#   testdata/qcow2.sh DIR   (writes DIR/images.txt)
# Also left in DIR, not listed (the tests expect them to be refused or treat them specially):
#   luks.qcow2, datafile.qcow2 (+ datafile.raw), unknown-incompat.qcow2, aes.qcow2,
#   old-qcow2-backing.qcow2 (listed with backing-format=qcow2; opening without it must fail).
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: qcow2.sh DIR}
patch="python3 $TESTDATA_DIR/qcow2_patch.py"
cd "$dir"
rm -f ./*.qcow2 ./*.raw images.txt
list() { echo "$*" >> images.txt; }
mk() { # mk FILE SIZE OPTIONS
    qemu-img create -q -f qcow2 -o "$3" "$1" "$2"
}
# A mix of patterns, zero writes (with and without unmap) and discards at cluster-unaligned places.
fill() { # fill FILE
    qio -f qcow2 -c 'write -P 0x11 0 100k' -c 'write -P 0x22 300k 5k' -c 'write -P 0x33 1M 128k' \
        -c 'write -z 1056k 64k' -c 'write -z -u 2M 128k' -c 'write -P 0x44 2M 4k' \
        -c 'discard 1152k 64k' -c 'write -P 0x55 3M 1k' -c 'write -P 0x66 4194304 512' \
        -c 'write -P 0x77 6M 2M' -c 'write -z 7M 64k' -c 'discard 7232k 128k' "$1"
}

# Versions and cluster sizes.
mk v2-64k.qcow2 8M compat=0.10; fill v2-64k.qcow2; list v2-64k.qcow2 qcow2
mk v2-4k.qcow2 8M compat=0.10,cluster_size=4k; fill v2-4k.qcow2; list v2-4k.qcow2 qcow2
for cs in 512 4k 64k 2M; do
    mk "v3-$cs.qcow2" 8M "compat=1.1,cluster_size=$cs"; fill "v3-$cs.qcow2"; list "v3-$cs.qcow2" qcow2
done
# A virtual size that is not a multiple of the cluster size.
mk odd-size.qcow2 5000000 cluster_size=64k
qio -f qcow2 -c 'write -P 0x12 4915200 84800' odd-size.qcow2; list odd-size.qcow2 qcow2

# Compressed clusters: zlib and zstd, whole images and single clusters written compressed.
qemu-img create -q -f raw pattern.raw 4M
qio -f raw -c 'write -P 0x21 0 1M' -c 'write -P 0x00 1M 64k' -c 'write -P 0x5a 2M 3k' -c 'write -P 0x6b 4190208 4k' pattern.raw
head -c 300000 /dev/urandom | dd of=pattern.raw bs=1 seek=1200000 conv=notrunc status=none
for ct in zlib zstd; do
    for cs in 512 4k 64k 2M; do
        qemu-img convert -q -c -f raw -O qcow2 -o "compression_type=$ct,cluster_size=$cs" pattern.raw "c-$ct-$cs.qcow2"
        list "c-$ct-$cs.qcow2" qcow2
    done
    mk "cw-$ct.qcow2" 4M "compression_type=$ct"
    qio -f qcow2 -c 'write -c -P 0x31 0 64k' -c 'write -c -P 0x32 64k 64k' -c 'write -P 0x33 128k 64k' \
        -c 'write -z 192k 64k' "cw-$ct.qcow2"
    list "cw-$ct.qcow2" qcow2
done
qemu-img convert -q -c -f raw -O qcow2 -o compat=0.10 pattern.raw c-v2.qcow2; list c-v2.qcow2 qcow2

# Extended L2 entries: subcluster allocation and zero bits.
for cs in 16k 64k 2M; do
    mk "xl2-$cs.qcow2" 8M "extended_l2=on,cluster_size=$cs"; fill "xl2-$cs.qcow2"; list "xl2-$cs.qcow2" qcow2
done
qemu-img convert -q -c -f raw -O qcow2 -o extended_l2=on pattern.raw xl2-compressed.qcow2; list xl2-compressed.qcow2 qcow2
mk xl2-prealloc.qcow2 2M extended_l2=on,preallocation=metadata
qio -f qcow2 -c 'write -P 0x41 2k 2k' -c 'write -z 64k 8k' xl2-prealloc.qcow2; list xl2-prealloc.qcow2 qcow2

# Zero clusters with and without a host offset; preallocation.
mk zero-alloc.qcow2 4M preallocation=metadata
qio -f qcow2 -c 'write -P 0x51 0 64k' -c 'write -z 64k 128k' -c 'write -z -u 256k 64k' zero-alloc.qcow2
list zero-alloc.qcow2 qcow2
for p in metadata falloc full; do
    mk "prealloc-$p.qcow2" 2M "preallocation=$p"; qio -f qcow2 -c 'write -P 0x61 64k 4k' "prealloc-$p.qcow2"
    list "prealloc-$p.qcow2" qcow2
done

# Refcount widths, lazy refcounts and the dirty bit (qemu-io killed after a write).
for rb in 1 16 64; do
    mk "refcount-$rb.qcow2" 8M "refcount_bits=$rb"; fill "refcount-$rb.qcow2"; list "refcount-$rb.qcow2" qcow2
done
mk dirty.qcow2 4M lazy_refcounts=on
qemu-io -f qcow2 -c 'write -P 0x71 64k 64k' -c 'sigraise 9' dirty.qcow2 >/dev/null 2>&1 || true
list dirty.qcow2 qcow2
# The corrupt bit: qemu still opens the image read-only.
mk corrupt-bit.qcow2 4M compat=1.1; qio -f qcow2 -c 'write -P 0x72 0 64k' corrupt-bit.qcow2
$patch set-incompat corrupt-bit.qcow2 1; list corrupt-bit.qcow2 qcow2
# A persistent dirty bitmap (bitmaps header extension, autoclear bit): ignored when reading.
mk bitmap.qcow2 4M compat=1.1; qemu-img bitmap --add bitmap.qcow2 b0
qio -f qcow2 -c 'write -P 0x73 0 64k' bitmap.qcow2; list bitmap.qcow2 qcow2

# Internal snapshots: the active layer and each snapshot, by name and by id. qemu-img map has no
# way to map a snapshot (no -l), so snapshot entries are no-map; their content is checked with convert -l.
mk snap.qcow2 4M compat=1.1
qio -f qcow2 -c 'write -P 0x81 0 256k' snap.qcow2
qemu-img snapshot -c first snap.qcow2
qio -f qcow2 -c 'write -P 0x82 64k 64k' -c 'write -z 128k 64k' -c 'write -P 0x83 3M 64k' snap.qcow2
qemu-img snapshot -c second snap.qcow2
qio -f qcow2 -c 'discard 0 64k' -c 'write -P 0x84 1M 64k' snap.qcow2
list snap.qcow2 qcow2
list snap.qcow2 qcow2 snapshot=first no-map
list snap.qcow2 qcow2 snapshot=second no-map
list snap.qcow2 qcow2 snapshot=1 no-map
mk snap-v2.qcow2 4M compat=0.10
qio -f qcow2 -c 'write -P 0x85 0 128k' snap-v2.qcow2
qemu-img snapshot -c old snap-v2.qcow2
qio -f qcow2 -c 'write -P 0x86 0 64k' snap-v2.qcow2
list snap-v2.qcow2 qcow2 snapshot=old no-map

# Backing chains: qcow2 -> qcow2 -> raw, the raw base shorter than the disk.
qemu-img create -q -f raw chain-base.raw 3M
qio -f raw -c 'write -P 0x91 0 3M' chain-base.raw
qemu-img create -q -f qcow2 -b chain-base.raw -F raw chain-mid.qcow2 6M
qio -f qcow2 -c 'write -P 0x92 1M 64k' -c 'write -z 1536k 64k' -c 'write -P 0x93 4M 64k' chain-mid.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on -b chain-mid.qcow2 -F qcow2 chain-top.qcow2 8M
qio -f qcow2 -c 'write -P 0x94 4k 4k' -c 'write -P 0x95 1M 2k' -c 'write -z 2M 4k' -c 'write -P 0x96 7M 64k' chain-top.qcow2
list chain-mid.qcow2 qcow2
list chain-top.qcow2 qcow2
# Old-style images that do not record the backing format: over raw (opens) and over qcow2
# (refused unless the backing format is given).
qemu-img create -q -f qcow2 -b chain-base.raw -F raw old-raw-backing.qcow2 4M
qio -f qcow2 -c 'write -P 0x97 64k 64k' old-raw-backing.qcow2
$patch drop-backing-format old-raw-backing.qcow2; list old-raw-backing.qcow2 qcow2
qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 old-qcow2-backing.qcow2 6M
qio -f qcow2 -c 'write -P 0x98 64k 64k' old-qcow2-backing.qcow2
$patch drop-backing-format old-qcow2-backing.qcow2; list old-qcow2-backing.qcow2 qcow2 backing-format=qcow2

# Refused variants (not listed): encryption, external data file, unknown incompatible bits, AES.
# qemu-img times PBKDF2 by the thread's CPU clock and gives up ("Unable to get accurate CPU usage")
# when a busy or coarse clock shows no progress; that is qemu-img's measurement, not the image, so retry.
luks_tries=0
until qemu-img create -q -f qcow2 --object secret,id=sec0,data=secret \
        -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 luks.qcow2 4M; do
    luks_tries=$((luks_tries + 1))
    [ "$luks_tries" -lt 5 ] || { echo "qcow2.sh: qemu-img could not make luks.qcow2" >&2; exit 1; }
done
qemu-img create -q -f qcow2 -o data_file=datafile.raw datafile.qcow2 4M
mk unknown-incompat.qcow2 4M compat=1.1; $patch set-incompat unknown-incompat.qcow2 9
mk aes.qcow2 4M compat=1.1; $patch set-crypt aes.qcow2 1
rm -f pattern.raw
