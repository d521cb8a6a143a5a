# Sourced by the image scripts: podman and buildah as they work on a machine without a
# container engine or cgroup delegation (vfs storage, chroot isolation), with a store of
# their own under the user's cache, kept between runs.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/openpacs/containers"
mkdir -p "$cache/store" "$cache/run"
storage=(--root "$cache/store" --runroot "$cache/run" --storage-driver vfs)
podman() { command podman "${storage[@]}" --cgroup-manager cgroupfs "$@"; }
buildah() { command buildah "${storage[@]}" "$@"; }
