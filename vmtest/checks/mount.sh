#!/bin/sh
# vdiskload mount / umount / tar through the kernel backends (the host's FUSE backend is MountTest's):
# every format of testdata/disks.sh mounted through kmod and through nbd, the partition chosen by default
# (the only file system), by number, by GPT name and by UUID in turn, its files checked, then unmounted and
# detached (one -d instead of umount) leaving no record and no /dev name; on testdata/mount-disks.sh's disks:
# the candidate listing, a failed mount that leaves nothing, vfat (this kernel has it) chosen by label, and
# tar of an ext4 and of a vfat. -l shows the mount point.
#   VDL_MOUNT_BACKENDS (default "kmod nbd"), VDL_MOUNT_FORMATS (default: all seven).
# vmtest: long (2026-12-07, host loaded: 60-120 s of guest time per mount+umount, the 14 of the matrix
# about 1100 s; a default check must stay near 3 minutes)
set -e
. "$(dirname "$0")/../kmod-lib.sh"
kmod_load
modprobe nbd
modprobe ext4 2>/dev/null || true
modprobe vfat 2>/dev/null || true
# vfat's code pages and character sets: the guest's kernel cannot load modules on demand (runs failed on
# cp437, then on the iocharset ascii)
for nls in nls_cp437 nls_iso8859_1 nls_ascii nls_utf8; do modprobe $nls 2>/dev/null || true; done
sh "$repo/testdata/disks.sh" "$PWD" > /dev/null
sh "$repo/testdata/mount-disks.sh" "$PWD" > /dev/null
mkdir mnt
hash_of() { awk -v f="$1" -v p="$2" '$1 == f && $5 == p {print $6}' disks.txt; }
nothing_left() { # after $1: no record, no /dev name, mnt no mount point
    ! ls /run/vdiskload/*.json > /dev/null 2>&1 || fail "$1: records left: $(ls /run/vdiskload)"
    ! ls /dev/img[0-9]* /dev/qcow[0-9]* /dev/vmdk[0-9]* /dev/vdi[0-9]* /dev/vhd[0-9]* /dev/vhdx[0-9]* > /dev/null 2>&1 || fail "$1: /dev names left"
    ! mountpoint -q mnt || fail "$1: mnt is still mounted"
}
uuid=$(blkid -p -o value -s UUID -O 1048576 gpt-ext4.raw)
[ -n "$uuid" ] || fail "blkid found no UUID in gpt-ext4.raw's partition"

n=0
for backend in ${VDL_MOUNT_BACKENDS:-kmod nbd}; do
    for ext in ${VDL_MOUNT_FORMATS:-raw qcow qcow2 vmdk vdi vhd vhdx}; do
        img=gpt-ext4.$ext
        case $((n % 4)) in 0) part="" ;; 1) part=":1" ;; 2) part=":ext4" ;; 3) part=":$uuid" ;; esac
        n=$((n + 1))
        vdl mount --backend "$backend" "$img$part" mnt || fail "mount --backend $backend $img$part"
        for f in hello.txt data.bin; do
            [ "$(sha256sum "mnt/$f" | cut -d' ' -f1)" = "$(hash_of "$img" "/$f")" ] || fail "$img$part ($backend): $f differs"
        done
        dev=$(sed -n 's/^ *"name" *: *"\([^"]*\)".*/\1/p' /run/vdiskload/*.json | head -n 1)
        if [ $n = 1 ]; then
            vdl -l | grep -q " $PWD/mnt " || fail "-l shows no mount point: $(vdl -l)"
        fi
        if [ "$ext" = vhdx ]; then
            vdl -d "/dev/$dev" || fail "-d /dev/$dev ($backend) with $img mounted by vdiskload mount"
        else
            vdl umount mnt || fail "umount ($backend, $img)"
        fi
        nothing_left "$img$part ($backend)"
    done
done

# The listing names both candidates; nothing is left.
if vdl mount --backend kmod two.qcow2 mnt 2> err.txt; then fail "two.qcow2 mounted without a PART"; fi
grep -q '1 (20 MiB, vfat, label "EFI", name "esp"); 2 (30 MiB, ext4, label "rootfs", name "root")' err.txt || fail "listing: $(cat err.txt)"
nothing_left "the listing"
if vdl mount --backend nbd -o no_such_option_anywhere two.qcow2:2 mnt 2> err.txt; then fail "a bad -o mounted"; fi
grep -q "mounting partition 2 (ext4) failed" err.txt || fail "failed mount: $(cat err.txt)"
nothing_left "the failed mount"

# vfat by label, read-only
vdl mount -r --backend kmod vfat.qcow2:ONLYFAT mnt || fail "mount vfat.qcow2:ONLYFAT"
grep -q "hello from a vdiskload mount test" mnt/hello.txt || fail "vfat: hello.txt"
vdl umount mnt || fail "umount vfat"
nothing_left "vfat"

# tar of an ext4 partition (kmod) and of a vfat one (nbd)
vdl tar --backend kmod -f ext4.tar two.qcow2:rootfs || fail "tar two.qcow2:rootfs"
tar -tf ext4.tar | grep -qx './hello.txt' || fail "ext4.tar: $(tar -tf ext4.tar)"
vdl tar --backend nbd vfat.qcow2 > vfat.tar || fail "tar vfat.qcow2"
tar -xOf vfat.tar ./hello.txt | grep -q "hello from a vdiskload mount test" || fail "vfat.tar: $(tar -tf vfat.tar)"
nothing_left "tar"
[ -z "$(vdl -l)" ] || fail "-l: $(vdl -l)"
rmmod vdisk
