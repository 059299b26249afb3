#!/bin/sh
# VHD ("vpc") images: fixed and dynamic disks made by qemu-img, dynamic disks with other block sizes
# and the creator-application size quirks made by vhdtool.py, and differencing disks (which qemu can
# neither make nor read) made by vhdtool.py from qemu-made parents.
#   testdata/vhd.sh DIR   (writes DIR/images.txt for the qemu oracle, DIR/differencing.txt for the
#                          differencing disks: lines "CHILD EXPECTED_RAW")
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: vhd.sh DIR}
cd "$dir"
rm -f ./*.vhd ./*.raw images.txt differencing.txt vhdtool.cmds
# tool ARGS...: queues a vhdtool.py command; all run in one python start-up (run_tool) after the
# qemu-made images they start from exist.
tool() {
    for a in "$@"; do printf "'%s' " "$a"; done >> vhdtool.cmds
    echo >> vhdtool.cmds
}
run_tool() {
    python3 "$TESTDATA_DIR/vhdtool.py" batch < vhdtool.cmds
    rm -f vhdtool.cmds
}

# qemu's dynamic disk: 2 MiB blocks, data in three of them, a zero write, the partial last block.
# 5 MiB rounds up by CHS to 5257216 bytes.
qemu-img create -q -f vpc dynamic.vhd 5M
qio -t unsafe -f vpc -c 'write -P 0x11 0 64k' -c 'write -P 0x22 2090k 12k' -c 'write -z 3M 64k' \
    -c 'write -P 0x33 5256704 512' dynamic.vhd
echo "dynamic.vhd vpc" >> images.txt

qemu-img create -q -f vpc empty.vhd 40M
echo "empty.vhd vpc" >> images.txt

qemu-img create -q -f vpc -o subformat=fixed fixed.vhd 5M
qio -t unsafe -f vpc -c 'write -P 0x44 0 64k' -c 'write -P 0x55 4M 4k' -c 'write -P 0x66 5256704 512' fixed.vhd
echo "fixed.vhd vpc" >> images.txt

# force_size: the size is kept exactly, the creator application is "qem2", the geometry maximal.
qemu-img create -q -f vpc -o force_size=on force.vhd 5000192
qio -t unsafe -f vpc -c 'write -P 0x77 4999680 512' force.vhd
echo "force.vhd vpc" >> images.txt
qemu-img create -q -f vpc -o force_size=on,subformat=fixed force-fixed.vhd 5000192
qio -t unsafe -f vpc -c 'write -P 0x78 4999680 512' force-fixed.vhd
echo "force-fixed.vhd vpc" >> images.txt

# Block sizes qemu does not make: the same content in 4 KiB, 64 KiB and 512 KiB blocks.
qemu-img convert -f vpc -O raw dynamic.vhd dynamic.raw
for bs in 4096 65536 524288; do
    tool dynamic dynamic.raw "dyn-$bs.vhd" --block-size $bs
    echo "dyn-$bs.vhd vpc" >> images.txt
done

# Size quirks: the footer's current size (6000000, 5999616 in whole sectors) differs from the CHS
# geometry's 5257216 bytes; qemu 7.2 believes the current size for Hyper-V ("win "), Disk2vhd,
# qemu's force_size ("qem2"), XenConverter ("CTXS") and XenServer ("tap\0"), the geometry otherwise.
for app in 'vpc ' 'win ' 'd2v ' 'qem2' 'CTXS' 'tap' 'vs  ' 'odd!'; do
    name=$(printf '%s' "$app" | tr -c 'a-zA-Z0-9\n' '_')
    cp dynamic.vhd "app-$name.vhd"
    tool footer "app-$name.vhd" --app "$app" --size 6000000
    echo "app-$name.vhd vpc" >> images.txt
done
# The maximal geometry means "use the current size" whatever the creator.
cp dynamic.vhd max-geometry.vhd
tool footer max-geometry.vhd --app 'vpc ' --geometry 65535,16,255 --size 6000128
echo "max-geometry.vhd vpc" >> images.txt
# A fixed disk whose Hyper-V current size is smaller than the data area, and one sized by a smaller CHS.
cp fixed.vhd fixed-win.vhd
tool footer fixed-win.vhd --app 'win ' --size 4194816
echo "fixed-win.vhd vpc" >> images.txt
cp fixed.vhd fixed-chs.vhd
tool footer fixed-chs.vhd --geometry 100,4,17
echo "fixed-chs.vhd vpc" >> images.txt

# Differencing disks. parent.vhd is qemu-made; parent.raw is its content.
qemu-img create -q -f vpc parent.vhd 5M
qio -t unsafe -f vpc -c 'write -P 0x11 0 1M' -c 'write -P 0x12 2M 2M' -c 'write -P 0x13 5256704 512' parent.vhd
qemu-img convert -f vpc -O raw parent.vhd parent.raw
# Sector-granular writes (bitmap bits inside one byte), with each kind of parent locator.
set -- --write 512:1024:0x41 --write 1049088:512:0x42 --write 3145728:70144:0x43 --write 5256704:512:0x44
tool child parent.vhd parent.raw child-w2ru.vhd child-w2ru.raw --block-size 65536 "$@" --w2ru '.\parent.vhd'
tool child parent.vhd parent.raw child-w2ku.vhd child-w2ku.raw --block-size 2097152 "$@" \
    --w2ku "$(printf '%s' "$PWD/parent.vhd" | tr / '\\')"
tool child parent.vhd parent.raw child-macx.vhd child-macx.raw --block-size 4096 "$@" --macx "$PWD/parent.vhd"
# Several locators: W2ru wins over a W2ku and a MacX naming another existing image.
tool child parent.vhd parent.raw child-prefer.vhd child-prefer.raw "$@" --w2ru '.\parent.vhd' \
    --w2ku "$(printf '%s' "$PWD/dynamic.vhd" | tr / '\\')" --macx "$PWD/dynamic.vhd"
# A three-deep chain: top -> mid -> parent.
tool child parent.vhd parent.raw mid.vhd mid.raw --block-size 65536 --write 0:4096:0x51 --write 2095616:4096:0x52 \
    --w2ru '.\parent.vhd'
tool child mid.vhd mid.raw top.vhd top.raw --block-size 524288 --write 512:512:0x61 --write 2097152:8192:0x62 \
    --w2ru '.\mid.vhd'
for c in child-w2ru child-w2ku child-macx child-prefer mid top; do echo "$c.vhd $c.raw" >> differencing.txt; done

# libvhdi cross-checks the generator: vhdimount must read what the expected files say. Its 20210425
# release misreads bitmap runs that start or end inside a bitmap byte, so this child's writes are
# 4 KiB aligned (whole bitmap bytes).
tool child parent.vhd parent.raw child-aligned.vhd child-aligned.raw --block-size 65536 \
    --write 4096:8192:0x71 --write 3145728:135168:0x72 --w2ru '.\parent.vhd'
echo "child-aligned.vhd child-aligned.raw" >> differencing.txt
run_tool
rm -f dynamic.raw
mnt=$(mktemp -d)
vhdimount child-aligned.vhd "$mnt" >/dev/null
status=0
cmp -s "$mnt/vhdi2" child-aligned.raw || status=1
umount "$mnt" 2>/dev/null || fusermount -u "$mnt"
rmdir "$mnt"
[ $status = 0 ] || { echo "vhd.sh: vhdimount disagrees with the expected content of child-aligned.vhd" >&2; exit 1; }
