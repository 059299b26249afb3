#!/bin/sh
# VMDK images: every subformat qemu-img makes, plus descriptors and extents written by hand (vmfs,
# vmfsSparse, mixed extents, CRLF) and by testdata/vmdk_make.py (VMware-style streamOptimized with the
# grain directory at the end, odd grain and table sizes, zeroed grains, COWD), and a 3-deep delta chain.
#   testdata/vmdk.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: vmdk.sh DIR}
cd "$dir"
rm -rf ./*.vmdk ./*.raw images.txt
make="python3 $TESTDATA_DIR/vmdk_make.py"
list() { echo "$*" >> images.txt; }

# The guest data most images hold: patterns across grain boundaries, a zero-filled range, the last sector.
pattern() { # pattern IMAGE FORMAT
    qio -f "$2" -c 'write -P 0x11 0 64k' -c 'write -P 0x22 100k 8k' -c 'write -P 0x33 1M 192k' \
        -c 'write -P 0 2M 64k' -c 'write -P 0x44 4193792 512' "$1"
}
qemu-img create -q -f raw source.raw 4M
pattern source.raw raw

# qemu-img's subformats
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    qemu-img create -q -f vmdk -o subformat=$sub,adapter_type=lsilogic $sub.vmdk 4M
    pattern $sub.vmdk vmdk
    list $sub.vmdk vmdk
done
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized source.raw streamOptimized.vmdk
list streamOptimized.vmdk vmdk

# zeroed grains: qemu writes GT entry 1 for zero writes when the header enables it
qemu-img create -q -f vmdk -o zeroed_grain=on zeroed.vmdk 4M
pattern zeroed.vmdk vmdk
qio -f vmdk -c 'write -z 1M 128k' -c 'write -z 3M 64k' zeroed.vmdk
list zeroed.vmdk vmdk

# several sparse and flat extents in one descriptor (twoGbMaxExtent* layout, kept small)
for i in 1 2 3; do qemu-img create -q -f vmdk split-s00$i.vmdk 2M; done
cat > split.vmdk <<'DESC'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="twoGbMaxExtentSparse"

# Extent description
RW 4096 SPARSE "split-s001.vmdk"
RW 4096 SPARSE "split-s002.vmdk"
RW 4096 SPARSE "split-s003.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "ide"
DESC
qio -f vmdk -c 'write -P 0x55 1984k 128k' -c 'write -P 0x66 4M 64k' -c 'write -P 0x77 6290944 512' split.vmdk
list split.vmdk vmdk
truncate -s 1M splitflat-f001.vmdk
truncate -s 3M splitflat-f002.vmdk
printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="twoGbMaxExtentFlat"\nRW 2048 FLAT "splitflat-f001.vmdk" 0\nRW 6144 FLAT "splitflat-f002.vmdk" 0\n' > splitflat.vmdk
qio -f vmdk -c 'write -P 0x12 1020k 8k' -c 'write -P 0x13 3M 4k' splitflat.vmdk
list splitflat.vmdk vmdk

# vmfs: a VMFS extent (no start offset), written with CRLF, comments and spaced ddb entries
# (qemu itself needs createType="..." and CID=... written exactly so)
truncate -s 4M vmfs-flat.vmdk
qio -f raw -c 'write -P 0x21 0 4k' -c 'write -P 0x31 2M 8k' vmfs-flat.vmdk
printf '# Disk DescriptorFile\r\nversion=1\r\nencoding="UTF-8"\r\n  # an indented comment\r\nCID=0000abcd\r\nparentCID=ffffffff\r\nisNativeSnapshot="no"\r\ncreateType="vmfs"\r\n\r\n# Extent description\r\nRW 8192 VMFS "vmfs-flat.vmdk"\r\n\r\nddb.adapterType = "lsilogic"\r\nddb.thinProvisioned = "1"\r\n' > vmfs.vmdk
list vmfs.vmdk vmdk

# vmfsSparse: a VMFSSPARSE extent, as a hosted sparse file and as a COWD file
qemu-img convert -f raw -O vmdk source.raw vmfssparse-delta.vmdk
printf '# Disk DescriptorFile\nversion=1\nCID=2\nparentCID=ffffffff\ncreateType="vmfsSparse"\nRW 8192 VMFSSPARSE "vmfssparse-delta.vmdk"\n' > vmfssparse.vmdk
list vmfssparse.vmdk vmdk
$make cowd source.raw cowd-delta.vmdk 8
printf '# Disk DescriptorFile\nversion=1\nCID=3\nparentCID=ffffffff\ncreateType="vmfsSparse"\nRW 8192 VMFSSPARSE "cowd-delta.vmdk"\n' > cowd.vmdk
list cowd.vmdk vmdk

# mixed extents: FLAT with a start offset, SPARSE, VMFS, and a FLAT extent reusing the first file
truncate -s 2M mixed-flat.bin
qio -f raw -c 'write -P 0x41 0 1M' -c 'write -P 0x42 1M 1M' mixed-flat.bin
qemu-img create -q -f vmdk mixed-sparse.vmdk 1M
qio -f vmdk -c 'write -P 0x43 64k 64k' mixed-sparse.vmdk
printf '# Disk DescriptorFile\nversion=1\nCID=4\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 1024 FLAT "mixed-flat.bin" 1536\nRW 2048 SPARSE "mixed-sparse.vmdk"\nRW 1024 VMFS "vmfs-flat.vmdk"\nRW 512 FLAT "mixed-flat.bin" 0\n' > mixed.vmdk
list mixed.vmdk vmdk

# made by vmdk_make.py: VMware stream layout, odd grain / table sizes, zeroed grains, scattered grains
$make stream source.raw vmware-stream.vmdk
list vmware-stream.vmdk vmdk
$make sparse source.raw small-grains.vmdk 8 128 zero
list small-grains.vmdk vmdk
$make sparse source.raw scattered.vmdk 16 512 reverse
list scattered.vmdk vmdk

# a 3-deep delta chain: each layer overwrites part of the one below
qemu-img create -q -f vmdk chain-base.vmdk 4M
pattern chain-base.vmdk vmdk
qemu-img create -q -f vmdk -b chain-base.vmdk -F vmdk chain-mid.vmdk
qio -f vmdk -c 'write -P 0x88 32k 64k' -c 'write -P 0 1M 64k' chain-mid.vmdk
qemu-img create -q -f vmdk -b chain-mid.vmdk -F vmdk chain-top.vmdk
qio -f vmdk -c 'write -P 0x99 3M 4k' chain-top.vmdk
list chain-top.vmdk vmdk
# a delta over a flat disk
qemu-img create -q -f vmdk -b monolithicFlat.vmdk -F vmdk flat-delta.vmdk
qio -f vmdk -c 'write -P 0xaa 2M 64k' flat-delta.vmdk
list flat-delta.vmdk vmdk
# a flat extent file shorter than the descriptor says: as qemu, the missing tail reads as zeros
truncate -s 3M short-flat.bin
qio -f raw -c 'write -P 0x51 3141632 4k' short-flat.bin
printf '# Disk DescriptorFile\nversion=1\nCID=5\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8192 FLAT "short-flat.bin" 0\n' > short-flat.vmdk
list short-flat.vmdk vmdk
# a sparse header of capacity 0 whose embedded descriptor names the extents (qemu follows it)
$make descsparse source.raw descsparse.vmdk
list descsparse.vmdk vmdk
# ESXi seSparse extents, made by sesparse_make.py (qemu-img cannot make them; its header documents every
# field): standalone, and as deltas over a sparse and a flat parent of the same 40 MiB size. The unallocated
# grains of a delta read through to its parent; its zero and unmapped grains read as zeros over the parent's data.
sesparse="python3 $TESTDATA_DIR/sesparse_make.py"
$sesparse sesparse.vmdk 40 --expected
list sesparse.vmdk vmdk
for parent in monolithicSparse monolithicFlat; do
    qemu-img create -q -f vmdk -o subformat=$parent sesparse-$parent-base.vmdk 40M
    qio -f vmdk -c 'write -P 0x61 0 1M' -c 'write -P 0x62 16M 64k' -c 'write -P 0x63 32M 256k' -c 'write -P 0x64 41877504 64k' sesparse-$parent-base.vmdk
    qemu-img convert -f vmdk -O raw sesparse-$parent-base.vmdk sesparse-$parent-base.raw
    cid=$(sed -n 's/^CID=\([0-9a-f]*\).*/\1/p' sesparse-$parent-base.vmdk | head -n 1)
    $sesparse sesparse-over-$parent.vmdk 40 --parent sesparse-$parent-base.vmdk "$cid" --expected sesparse-$parent-base.raw
    rm sesparse-$parent-base.raw
    list sesparse-over-$parent.vmdk vmdk
done
