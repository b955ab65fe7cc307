#!/bin/sh
# A Debian bookworm image with python3 (3.11) and venv, built from Debian's own packages, for a
# host that reaches a Debian mirror but no container registry (`make cloud-image` uses it then).
#   deploy/docker/debian-base.sh TAG [MIRROR]      (needs root, debootstrap and a Docker daemon)
set -eu
if ! command -v debootstrap >/dev/null 2>&1 && ! test -x /usr/sbin/debootstrap; then
    echo "debootstrap is missing: apt-get install debootstrap" >&2
    exit 1
fi
tag=$1
mirror=${2:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/edgeward-rootfs-XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,libgl1,libglib2.0-0 \
    bookworm "$root" "$mirror"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag"
