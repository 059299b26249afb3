#!/bin/sh
# VDI images: dynamic and static, discarded and unallocated blocks, odd sizes.
#   testdata/vdi.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: vdi.sh DIR}
cd "$dir"
setfield() { python3 "$TESTDATA_DIR/structpatch.py" "$@"; }
rm -f ./*.vdi images.txt

# 6 MiB dynamic: blocks allocated out of order (the file order follows the writes), a partial
# block, written zeros (qemu allocates a block for them), the last sector, two blocks never written.
qemu-img create -q -f vdi dynamic.vdi 6M
qio -f vdi -c 'write -P 0x11 3M 64k' -c 'write -P 0x22 0 4k' -c 'write -P 0x33 1M 1M' -c 'write -z 4M 4k' \
    -c 'write -P 0x44 6290944 512' dynamic.vdi
echo "dynamic.vdi vdi" >> images.txt

# Static: every block allocated up front, in order (qemu-img map calls it all data).
qemu-img create -q -f vdi -o static=on static.vdi 3M
qio -f vdi -c 'write -P 0x55 1M 8k' static.vdi
echo "static.vdi vdi" >> images.txt

qemu-img create -q -f vdi empty.vdi 2M
echo "empty.vdi vdi" >> images.txt

# qemu cannot discard VDI blocks (qemu-io discard is a no-op), so mark one discarded (0xfffffffe,
# reads as zeros) in the block map by hand: block 1 of a copy of dynamic.vdi (map at 0x200).
cp dynamic.vdi discarded.vdi
setfield discarded.vdi 0x204 '<I' 0xfffffffe
echo "discarded.vdi vdi" >> images.txt

# A disk size that is not a multiple of 512 (VBoxManage convertfromraw writes such): qemu rounds it up.
qemu-img create -q -f vdi odd.vdi 2M
qio -f vdi -c 'write -P 0x66 1M 1M' odd.vdi
setfield odd.vdi 0x170 '<Q' 2000000
echo "odd.vdi vdi" >> images.txt

# The last data block ends past EOF (a truncated copy): qemu reads the missing bytes as zeros.
qemu-img create -q -f vdi short.vdi 2M
qio -f vdi -c 'write -P 0x77 1M 1M' short.vdi
truncate -s -4096 short.vdi
echo "short.vdi vdi" >> images.txt
