#!/bin/sh
# Installs what a vdiskload task needs and is missing, from Debian's packages (as root).
#   scripts/deps.sh build   JDK 17 and Maven
#   scripts/deps.sh test    the independent implementations the tests compare against
#   scripts/deps.sh demo    what the demo uses to make its sample image
set -e
missing=""
want() { # want COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
for group in "$@"; do
    case "$group" in
        build) want javac openjdk-17-jdk-headless; want mvn maven; want flock util-linux ;;
        demo) want qemu-img qemu-utils; want sgdisk gdisk; want mkfs.ext4 e2fsprogs ;;
        test) want qemu-img qemu-utils; want sgdisk gdisk; want mkfs.ext4 e2fsprogs; want sfdisk fdisk
              want vhdiinfo libvhdi-utils; want vmdkinfo libvmdk-utils; want qcowinfo libqcow-utils
              want python3 python3
              want nbdinfo libnbd-bin; want nbdkit nbdkit ;;
        *) echo "deps.sh: unknown group '$group' (build, test, demo)" >&2; exit 2 ;;
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
