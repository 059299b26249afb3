#!/bin/sh
# Installs what a vdiskload task needs and is missing, from Debian's packages (as root).
#   scripts/deps.sh build   JDK 17, Maven, and libdeflate (compressed qcow2 decodes about twice as fast; zlib without it)
#   scripts/deps.sh test    the independent implementations the tests compare against
#   scripts/deps.sh demo    what the demo uses to make its sample image and attach it
#   scripts/deps.sh bench   what bench/serve-vs-qemu-nbd.sh and attach-vs-qsd.sh drive (qemu-nbd, nbdcopy, fio, qemu-storage-daemon)
#   scripts/deps.sh debs    what scripts/build-debs needs besides the build (dpkg-shlibdeps, unzip, asciidoctor for the man pages)
#   scripts/deps.sh debtest what scripts/test-debs checks the packages with (lintian, mmdebstrap)
#   scripts/deps.sh vm      what vmtest/run needs to boot Debian's kernel in qemu, build vdisk.ko for it, and its checks' tools
set -e
missing=""
want() { # want COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
want_pkg() { # want_pkg PACKAGE   (for packages without a command of their own)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing="$missing $1"
}
for group in "$@"; do
    case "$group" in
        build) want javac openjdk-17-jdk-headless; want mvn maven; want flock util-linux; want_pkg libdeflate0 ;;
        demo) want qemu-img qemu-utils; want sgdisk gdisk; want mkfs.ext4 e2fsprogs; want losetup mount; want setsid util-linux
              want mkfs.fat dosfstools; want mcopy mtools; want blkid util-linux; want unshare util-linux; want dumpe2fs e2fsprogs
              want tar tar ;;
        test) want qemu-img qemu-utils; want sgdisk gdisk; want mkfs.ext4 e2fsprogs; want sfdisk fdisk
              want vhdiinfo libvhdi-utils; want vmdkinfo libvmdk-utils; want qcowinfo libqcow-utils
              want python3 python3
              want nbdinfo libnbd-bin; want nbdkit nbdkit; want openssl openssl
              want losetup mount; want blkdiscard util-linux; want setsid util-linux; want debugfs e2fsprogs
              want mkfs.fat dosfstools; want fsck.fat dosfstools; want mcopy mtools; want mtype mtools
              want xz xz-utils; want bzip2 bzip2; want zstd zstd; want lz4 lz4; want gzip gzip; want fdisk fdisk
              want blkid util-linux; want unshare util-linux; want dumpe2fs e2fsprogs; want tar tar ;;
        bench) want qemu-nbd qemu-utils; want nbdcopy libnbd-bin; want fio fio; want python3 python3
               want qemu-storage-daemon qemu-system-common ;;
        debs) want dpkg-shlibdeps dpkg-dev; want unzip unzip; want asciidoctor asciidoctor ;;
        debtest) want lintian lintian; want mmdebstrap mmdebstrap ;;
        vm) want qemu-system-x86_64 qemu-system-x86; want_pkg linux-image-amd64; want_pkg busybox-static
            want_pkg linux-headers-amd64; want modprobe kmod; want cpio cpio; want gzip gzip
            want qemu-nbd qemu-utils; want sgdisk gdisk; want debugfs e2fsprogs; want java openjdk-17-jdk-headless
            want gcc gcc; want make make; want_pkg libc6-dev; want_pkg linux-libc-dev; want hdparm hdparm; want fio fio
            want blkid util-linux; want unshare util-linux; want mkfs.fat dosfstools; want mcopy mtools ;;
        *) echo "deps.sh: unknown group '$group' (build, test, demo, bench, debs, debtest, vm)" >&2; exit 2 ;;
    esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "vdiskload: missing packages:$missing; install them as root (apt-get install$missing)" >&2
    exit 1
fi
echo "vdiskload: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
