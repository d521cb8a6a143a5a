#!/usr/bin/env bash
# Make the image's base from Debian's packages alone (debootstrap of the release
# deploy/Dockerfile names) and import it into podman, for machines that reach Debian's mirror
# but no container registry. Prints the image name, to pass as --build-arg BASE_IMAGE=...
#   deploy/image/make-base.sh
# Cached by its inputs (release, packages, mirror, this script, the ISO week, so security
# updates arrive weekly): the image in podman's store, the root file system as a tarball.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/image/podman.sh

release="$(sed -n 's/^ARG DEBIAN_RELEASE=//p' deploy/Dockerfile)"
packages="python3,ca-certificates"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
key="$(printf '%s\n' "$release" "$packages" "$mirror" "$(date -u +%G-%V)" \
    | cat - deploy/image/make-base.sh | sha256sum | cut -c1-12)"
image="localhost/openpacs-base:$release-$key"

if podman image exists "$image"; then
    echo "$image"
    exit 0
fi
tarball="$cache/base-$release-$key.tar"
if [ ! -s "$tarball" ]; then
    rm -f "$cache"/base-*.tar  # older weeks
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    chmod 0755 "$rootfs"  # the image's / (mktemp made it 0700: no other user could enter)
    debootstrap --variant=minbase --include="$packages" "$release" "$rootfs" "$mirror" >&2
    # What a container does not need: downloaded packages, package lists, documentation,
    # translations of messages (programs fall back to English).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi
podman import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >&2
echo "$image"
