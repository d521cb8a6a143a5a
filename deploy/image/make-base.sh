#!/usr/bin/env bash
# Make the image's base from Debian's packages alone (mmdebstrap of the release
# deploy/Dockerfile names, variant minbase) and import it into podman, for machines that reach
# Debian's mirror but no container registry. Prints the image name, to pass as
# --build-arg BASE_IMAGE=...
#   deploy/image/make-base.sh
# Cached by its inputs (release, packages, mirror, this script, the ISO week, so security
# updates arrive weekly): the image in podman's store, the root file system as a tarball.
#
# mmdebstrap rather than debootstrap: it resolves and downloads with apt and needs no fsync
# per file (force-unsafe-io: the tree only lives until it is archived), 35 to 50 s here where
# debootstrap took 110 s. The merged-usr hook gives bookworm's merged /usr without the
# usrmerge package (and the Perl it pulls in), so the packages are debootstrap's minbase ones.
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
    # The tree is built in memory where /dev/shm allows it (a shared disk made the same
    # work take from 40 to 85 s).
    if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
        && ! findmnt -no OPTIONS /dev/shm 2>/dev/null | grep -qw noexec; then
        export TMPDIR=/dev/shm
    fi
    # What a container does not need: documentation (but the licences), manual pages,
    # translations of messages (programs fall back to English). Package lists and downloaded
    # packages are left out by mmdebstrap itself.
    mmdebstrap --quiet --variant=minbase --include="$packages" --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt=force-unsafe-io \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$release" "$tarball.tmp" "$mirror" >&2
    mv "$tarball.tmp" "$tarball"
fi
podman import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >&2
echo "$image"
