#!/bin/sh
# dracut's side of attaching the images vdiskload= names at boot (queued by parse-vdiskload.sh): the work
# is /usr/lib/vdiskload/boot.sh's, shared with the initramfs-tools script; this gives it dracut's ways.
# A program, not a sourced hook: a failure ends it, not dracut's init.
. /lib/dracut-lib.sh
. /usr/lib/vdiskload/boot.sh

# One line naming the problem on the console, then dracut's emergency shell.
vdl_fail() {
    vdl_debug_logs
    echo "vdiskload: $*" > /dev/console
    echo "<29>vdiskload: $*" > /dev/kmsg
    emergency_shell -n vdiskload "vdiskload= could not be attached"
    exit 1
}
vdl_device() { label_uuid_to_dev "$1"; }
vdl_fstype() { blkid -s TYPE -o value "$1"; }
# Up to 2 minutes: the links of the image's partitions must exist before udev stops at the switch, and a
# slow machine's udev may take longer than the usual 10 s (it returns as soon as the queue is empty).
vdl_settle() { udevadm settle --timeout=120; }

spec=$(vdl_spec)
[ -n "$spec" ] || exit 0
vdl_boot "$spec"
