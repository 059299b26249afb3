#!/bin/sh
# dracut cmdline hook: with vdiskload= on the kernel command line, attach its images once udev has settled
# (the host devices are there), in the initqueue, where dracut goes on waiting for the root device.
if getarg vdiskload= > /dev/null; then
    /sbin/initqueue --settled --onetime --unique --name vdiskload /sbin/vdiskload-boot
fi
