#!/bin/bash
# dracut module: what attaching images at boot needs (vdiskload= on the kernel command line, as with the
# initramfs-tools hook): vdiskload with its Java runtime and the boot code it shares with the
# initramfs-tools script (/usr/lib/vdiskload/boot.sh), vdisk.ko where DKMS built it for this kernel, nbd.ko
# as the fallback, the file-system modules a host partition may use, the udev rule that names the module's
# disks, and a cmdline hook that queues the attaching once udev has settled.
# VDISKLOAD_KO (a vdisk.ko to take instead of the installed one) is for building a test initramfs.

check() {
    # Wherever the package is installed, as initramfs-tools' hook is always run.
    [ -x /usr/lib/vdiskload/runtime/bin/java ] && [ -f /usr/lib/vdiskload/vdiskload.jar ] || return 1
    return 0
}

depends() {
    echo bash udev-rules rootfs-block
}

installkernel() {
    if [ -n "${VDISKLOAD_KO:-}" ]; then
        mkdir -p "$initdir/lib/modules/$kernel/updates"
        cp "$VDISKLOAD_KO" "$initdir/lib/modules/$kernel/updates/vdisk.ko"
    else
        hostonly='' instmods -o vdisk
    fi
    hostonly='' instmods nbd
    hostonly='' instmods -o ext4 xfs btrfs vfat exfat ntfs3 f2fs
}

install() {
    local f lib
    mkdir -p "$initdir/usr/lib"
    cp -a /usr/lib/vdiskload "$initdir/usr/lib/"
    # The system libraries the runtime's programs and libraries link against.
    find /usr/lib/vdiskload/runtime /usr/lib/vdiskload/native -type f \( -name '*.so' -o -path '*/bin/*' \) | while read -r f; do
        for lib in $(env --unset=LD_PRELOAD ldd "$f" 2>/dev/null \
                     | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
            case "$lib" in /usr/lib/vdiskload/*) continue ;; esac
            inst_library "$lib"
        done
    done
    # What the boot code, the launcher and attaching run.
    inst_multiple setsid bash blkid awk du cut tail sed grep readlink sleep mount cp modprobe udevadm
    inst_rules 99-vdiskload.rules
    inst_simple /usr/lib/udev/vdiskload-devname
    inst_script "$moddir/vdiskload-boot.sh" /sbin/vdiskload-boot
    inst_hook cmdline 90 "$moddir/parse-vdiskload.sh"
}
