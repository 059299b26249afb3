#!/bin/sh
# attach-kmod.sh for every format vdiskload writes, its variants and a layout: raw, qcow, qcow2, a qcow2
# overlay over a backing file, vmdk sparse, flat and stream-optimized, vdi, vhd, vhdx and a JSON layout;
# the stale-mapping fio check on raw, qcow2 and vhdx.
# vmtest: long (about 20 minutes of guest time)
# vmtest: scratch
VDL_KMOD_FORMATS="raw qcow qcow2 qcow2-chain vmdk vmdk-flat vmdk-stream vdi vhd vhdx layout" \
    VDL_KMOD_STALE="raw qcow2 vhdx" exec sh -e "$(dirname "$0")/attach-kmod.sh"
