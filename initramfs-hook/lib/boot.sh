# vdiskload's boot-time attaching, shared by the initramfs-tools script (scripts/local-top/vdiskload) and
# the dracut module (dracut/90vdiskload): parses vdiskload= on the kernel command line, mounts the host
# devices and attaches the images, so that root=/dev/vdi0p2, root=UUID=... or root=PARTUUID=... of a
# partition inside an image resolve.
#   vdiskload=HOSTDEV:PATH[:ro][,HOSTDEV:PATH[:ro]...]   (the parameter may also be given several times)
# HOSTDEV (/dev/vda1, UUID=..., LABEL=..., PARTUUID=...) is mounted under /run/vdiskload/host (the second
# host device under host2, ...); PATH is the image's path on it. The kmod backend where vdisk.ko loads,
# else nbd. Any problem: one line naming it, then the initramfs' shell.
#
# Surviving the switch to the real root: both initramfs-tools (run-init) and dracut (switch_root) move /run
# into the real root and delete the initramfs' files, while the serving process keeps the initramfs as its
# root directory. So /usr/lib/vdiskload (runtime, jar, launcher) is copied to a tmpfs of its own at
# /run/vdiskload/lib, and /run is bound onto itself (rbind, submounts included) at the end: init moves the
# upper copy, the serving process goes on seeing the lower one — the same tmpfs, the same state files, the
# same runtime — at the same paths.
#
# Sourced (POSIX sh). The caller defines what differs between the two initramfs builders:
#   vdl_fail MESSAGE     prints "vdiskload: MESSAGE" and drops to the shell; does not return
#   vdl_device HOSTDEV   prints the device HOSTDEV names (/dev/..., UUID=, LABEL=, PARTUUID=), or fails
#   vdl_fstype DEVICE    prints the file-system type on DEVICE
#   vdl_settle           waits for udev to handle what is pending
# and may set VDL_DEVICE_WAIT, the seconds a host device may take to appear (30).

VDL_STATE=/run/vdiskload
VDL_HOME=$VDL_STATE/lib  # a copy of /usr/lib/vdiskload

# The entries of every vdiskload= on the kernel command line, comma-separated (empty: nothing to do).
vdl_spec() {
    local x spec=""
    for x in $(cat /proc/cmdline); do
        case "$x" in
            vdiskload=*) spec="${spec:+$spec,}${x#vdiskload=}" ;;
        esac
    done
    echo "$spec"
}

# Text from the command line is shown with anything unprintable as '?'.
vdl_printable() { printf '%s' "$1" | sed 's/[^[:print:]]/?/g'; }

# Checks every entry before anything is mounted: a typo stops the boot before it half happens.
vdl_check() {
    local entry ifs=$IFS
    IFS=,
    for entry in $1; do
        IFS=$ifs
        case "$entry" in
            *:/*:ro|*:/*) ;;
            *) vdl_fail "bad vdiskload= entry '$(vdl_printable "$entry")': expected HOSTDEV:PATH[:ro], PATH starting with /" ;;
        esac
        [ -n "${entry%%:*}" ] || vdl_fail "bad vdiskload= entry '$(vdl_printable "$entry")': no host device before the ':'"
        IFS=,
    done
    IFS=$ifs
}

# The runtime and jar, on a tmpfs of their own (/run may be noexec, and is small); the serving process's
# working directory.
vdl_runtime() {
    local size
    modprobe vdisk 2>/dev/null || modprobe nbd 2>/dev/null \
        || vdl_fail "neither vdisk.ko nor nbd.ko loads: no way to attach images"
    [ -x "$VDL_HOME/bin/vdiskload" ] && return 0
    mkdir -p "$VDL_HOME"
    size=$(du -sk /usr/lib/vdiskload | cut -f1)
    mount -t tmpfs -o "mode=0755,size=$((size + 8192))k" vdiskload-lib "$VDL_HOME" \
        || vdl_fail "cannot mount a tmpfs for the runtime at $VDL_HOME"
    cp -a /usr/lib/vdiskload/. "$VDL_HOME/" || vdl_fail "cannot copy the runtime to $VDL_HOME"
    mkdir -p "$VDL_HOME/cache"
}

vdl_hosts=""  # "DEVICE MOUNTPOINT" lines of the host devices mounted so far
# vdl_mount_host HOSTDEV MODE: mounts it (once; remounted rw when a later image wants to write) and sets
# vdl_mnt; returns 1 when the device does not appear, 2 when it holds no known file system, 3 when mount fails.
vdl_mount_host() {
    local dev n fstype
    vdl_settle
    dev=""
    n=0
    while [ $n -lt "${VDL_DEVICE_WAIT:-30}" ]; do
        dev=$(vdl_device "$1") && [ -b "$dev" ] && break
        dev=""
        sleep 1
        n=$((n + 1))
    done
    [ -n "$dev" ] || return 1
    dev=$(readlink -f "$dev")
    vdl_mnt=$(echo "$vdl_hosts" | awk -v d="$dev" '$1 == d { print $2; exit }')
    if [ -n "$vdl_mnt" ]; then
        [ "$2" = ro ] || mount -o remount,rw "$vdl_mnt" || return 3
        return 0
    fi
    n=$(echo "$vdl_hosts" | grep -c .)
    if [ "$n" = 0 ]; then vdl_mnt=$VDL_STATE/host; else vdl_mnt=$VDL_STATE/host$((n + 1)); fi
    fstype=$(vdl_fstype "$dev")
    [ -n "$fstype" ] && [ "$fstype" != unknown ] || return 2
    modprobe "$fstype" 2>/dev/null
    mkdir -p "$vdl_mnt"
    mount -t "$fstype" -o "$2" "$dev" "$vdl_mnt" || return 3
    vdl_hosts="$vdl_hosts
$dev $vdl_mnt"
}

# Attaches every entry of the checked spec $1.
vdl_attach_all() {
    local entry host path mode rc opts err ifs=$IFS
    IFS=,
    for entry in $1; do
        IFS=$ifs
        host=${entry%%:*}
        path=${entry#*:}
        mode=rw
        case "$path" in *:ro) mode=ro; path=${path%:ro} ;; esac
        rc=0
        vdl_mount_host "$host" "$mode" || rc=$?
        host=$(vdl_printable "$host")
        case "$rc" in
            0) ;;
            1) vdl_fail "host device $host for $(vdl_printable "$path") not found" ;;
            2) vdl_fail "host device $host for $(vdl_printable "$path") has no file system this initramfs knows" ;;
            *) vdl_fail "cannot mount host device $host for $(vdl_printable "$path")" ;;
        esac
        [ -f "$vdl_mnt$path" ] || vdl_fail "$(vdl_printable "$path"): no such file on $host"
        opts=""
        [ "$mode" = rw ] || opts="-r"
        # The serving process starts in $VDL_HOME (not in the initramfs, which is emptied at the switch),
        # JNA unpacks its native half there (/run may be noexec), and its argv[0] @vdiskload-NAME has
        # systemd spare it. A slow machine waits for the devices up to 5 minutes (not attaching's usual 2)
        # rather than stop the boot.
        # shellcheck disable=SC2086
        err=$(cd "$VDL_HOME" && XDG_CACHE_HOME=$VDL_HOME/cache VDISKLOAD_ATTACH_TIMEOUT=300 \
                "$VDL_HOME/bin/vdiskload" $opts "$vdl_mnt$path" 2>&1 > /dev/null) \
            || { err=$(echo "$err" | tail -n 1); vdl_fail "${err#vdiskload: }"; }
        IFS=,
    done
    IFS=$ifs
    vdl_settle
}

# The lower copy of /run stays with the initramfs (see the top); init moves the upper one.
vdl_keep_run() {
    mount --rbind /run /run || vdl_fail "cannot bind /run onto itself for the serving process"
}

# With vdiskload.debug on the command line, the serving processes' logs (before a failure's line).
vdl_debug_logs() {
    local log
    case " $(cat /proc/cmdline) " in
        *" vdiskload.debug "*) for log in "$VDL_STATE"/*.log; do [ -f "$log" ] && sed "s|^|$log: |" "$log"; done ;;
    esac
}

# Everything, in order, for the spec $1.
vdl_boot() {
    vdl_check "$1"
    vdl_runtime
    vdl_attach_all "$1"
    vdl_keep_run
}
