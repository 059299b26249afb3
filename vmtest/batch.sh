#!/bin/sh
# Runs in the guest, in a chroot of the host's root, as root: loads the modules vmtest/run was asked
# for, then runs each check with "set -e" between markers the host parses:
#   VDL-CHECK-BEGIN name
#   ...the check's output...
#   VDL-CHECK-END name rc=N
# Usage: batch.sh RUNDIR   (RUNDIR holds: checks, one path a line; modules, one name a line; kernel;
#                           disk, present when the guest has the scratch disk; out, when its files go back
#                           to the host)
run="$1"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export VDL_KERNEL="$(cat "$run/kernel")"
export VDL_KMOD="$(cat "$run/kmod")"
cd /

echo  # the BIOS leaves the console mid-line
echo "VDL-BATCH-BEGIN uptime=$(cut -d" " -f1 /proc/uptime)"
while read -r m; do
    [ -n "$m" ] || continue
    modprobe "$m" || echo "VDL-MODULE-FAILED $m"
done < "$run/modules"

if [ -f "$run/disk" ]; then
    # The second virtio disk, ext4: files for the host to read back with debugfs ($VDL_OUT, with --out),
    # and room on a real disk for checks whose images must not live in the guest's RAM ($VDL_SCRATCH).
    disk=/run/vdl-disk
    mkdir -p "$disk"
    modprobe ext4
    if mkfs.ext4 -q -F /dev/vda && mount /dev/vda "$disk"; then
        [ ! -f "$run/out" ] || export VDL_OUT="$disk"
        export VDL_SCRATCH="$disk/scratch"
        mkdir -p "$VDL_SCRATCH"
    else
        echo "VDL-OUT-FAILED"
    fi
fi

# A check under the host's /tmp (a clone there): the top directory holding it, from the host's /tmp
# (init keeps it at /run/vdl-host-tmp), bound at the same path over the guest's own /tmp.
while read -r check; do
    case "$check" in
        /tmp/*/*)
            top=${check#/tmp/}; top=/tmp/${top%%/*}
            [ -d "$top" ] && continue
            mkdir -p "$top" && mount -o bind,ro "/run/vdl-host-tmp${top#/tmp}" "$top" || echo "VDL-BIND-FAILED $top"
            ;;
    esac
done < "$run/checks"

kernel_problems='Oops|BUG:|WARNING:|kernel BUG|general protection|blocked for more than|Call Trace|UBSAN|list_(add|del) corruption|refcount_t:|Kernel panic|Objects remaining'
while read -r check; do
    [ -n "$check" ] || continue
    name=$(basename "$check")
    # The check's own interpreter (its #! line), with -e; /bin/sh without one.
    interp=/bin/sh
    first=$(head -n 1 "$check")
    case "$first" in '#!'*) interp="${first#\#!}" ;; esac
    work=$(mktemp -d "/tmp/$name.XXXXXX")
    dmesg -C
    echo "VDL-CHECK-BEGIN $name"
    # shellcheck disable=SC2086 # the #! line is split into interpreter and its arguments on purpose
    (cd "$work" && TMPDIR="$work" exec $interp -e "$check") < /dev/null 2>&1
    rc=$?
    # The kernel's own verdict: an oops, a warning, a BUG or a hung task fails the check whatever it said.
    if dmesg | grep -E "$kernel_problems" > "$work/.dmesg-problems"; then
        echo "VDL-DMESG $name"
        echo "the kernel reported problems; its log during the check:"
        dmesg | tail -n 80
        [ $rc != 0 ] || rc=99
    fi
    # A JVM that crashed (the check's own, or a serving process it started there) leaves its fatal
    # error report in its working directory, which goes with the check's: print its head (the signal,
    # the problematic frame, the registers and instructions) and keep it under $VDL_OUT when there is one.
    for f in "$work"/hs_err_pid*.log; do
        [ -f "$f" ] || continue
        echo "VDL-HS-ERR $name ${f##*/}"
        head -n 120 "$f"
        [ -z "${VDL_OUT:-}" ] || cp "$f" "$VDL_OUT/$name.${f##*/}"
    done
    echo "VDL-CHECK-END $name rc=$rc"
    rm -rf "$work"
done < "$run/checks"

if [ -f "$run/out" ]; then
    sync
    umount "$VDL_OUT" || echo "VDL-OUT-FAILED"
fi
echo "VDL-BATCH-END"
