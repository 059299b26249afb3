#!/bin/sh
# One image of each format (and a 3-deep qcow2 chain, a compressed qcow2), with the same guest content:
# what the NBD server, attach backends and benchmarks are tested on.
#   testdata/every-format.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: every-format.sh DIR}
cd "$dir"
rm -f ./*.raw ./*.qcow ./*.qcow2 ./*.vmdk ./*.vdi ./*.vhd ./*.vhdx images.txt
truncate -s 6M src.raw
qio -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 64k' -c 'write -P 0x33 3M 4k' -c 'write -z 4M 64k' \
    -c 'write -P 0x44 6290944 512' src.raw
echo "src.raw raw" >> images.txt
for spec in qcow2: qcow: vdi: vpc:subformat=dynamic vpc-fixed:subformat=fixed vhdx: vmdk: \
            vmdk-stream:subformat=streamOptimized; do
    name=${spec%%:*}; opts=${spec#*:}; fmt=${name%%-*}
    ext=$fmt; [ "$fmt" = vpc ] && ext=vhd
    qemu-img convert -q -f raw -O "$fmt" ${opts:+-o "$opts"} src.raw "$name.$ext"
    flag=""; [ "$fmt" = vhdx ] && flag=no-map   # qemu 7.2 reports no block status for vhdx
    echo "$name.$ext $fmt $flag" >> images.txt
done
qemu-img convert -q -c -f raw -O qcow2 src.raw compressed.qcow2
echo "compressed.qcow2 qcow2" >> images.txt
# chain-base.qcow2 <- chain-mid.qcow2 <- chain-top.qcow2, each layer writing its own ranges.
qemu-img convert -q -f raw -O qcow2 src.raw chain-base.qcow2
qemu-img create -q -f qcow2 -b chain-base.qcow2 -F qcow2 chain-mid.qcow2
qio -f qcow2 -c 'write -P 0x55 512k 1M' chain-mid.qcow2
qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 chain-top.qcow2
qio -f qcow2 -c 'write -P 0x66 1M 8k' -c 'write -z 2M 4k' chain-top.qcow2
echo "chain-top.qcow2 qcow2" >> images.txt
