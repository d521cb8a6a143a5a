# Sourced by the image scripts: podman and buildah as they work on a machine without a
# container engine or cgroup delegation (chroot isolation, cgroupfs), with a store of their
# own under the user's cache, kept between runs. Run it (bash deploy/image/podman.sh) to print
# the storage options, one a line, for other programs (tests/image).
#
# The storage driver is the kernel's overlay file system when it can be used (root, overlay
# in /proc/filesystems): vfs, the fallback, copies the whole file system for every layer and
# every container, which made a build several times slower. OPENPACS_CONTAINERS_DRIVER
# overrides the choice. Each driver has its own store (one store cannot change driver).
cache="${XDG_CACHE_HOME:-$HOME/.cache}/openpacs/containers"
driver="${OPENPACS_CONTAINERS_DRIVER:-}"
if [ -z "$driver" ]; then
    if [ "$(id -u)" -eq 0 ] && grep -qw overlay /proc/filesystems 2>/dev/null; then
        driver=overlay
    else
        driver=vfs
    fi
fi
mkdir -p "$cache/$driver/store" "$cache/$driver/run"
storage=(--root "$cache/$driver/store" --runroot "$cache/$driver/run" --storage-driver "$driver")
podman() { command podman "${storage[@]}" --cgroup-manager cgroupfs "$@"; }
buildah() { command buildah "${storage[@]}" "$@"; }
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    printf '%s\n' "${storage[@]}"
fi
