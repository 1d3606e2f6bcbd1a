#!/bin/bash
# Builds an image FROM scratch with buildah and writes it as an OCI archive
# (no registry is needed; `ctr images import` or `skopeo copy` load it).
#
#   build.sh NAME:TAG CONTAINERFILE CONTEXT_DIR OUT.tar [--build-arg K=V]...
#
# buildah runs without a daemon: vfs storage (no overlay mount needed) and
# chroot isolation (no user namespace or runtime; the Containerfile has no
# RUN step anyway). Its storage is a temporary directory removed on exit, so
# nothing is left under /var/lib/containers.
set -euo pipefail
name=$1 file=$2 context=$3 out=$4
shift 4
store=$(mktemp -d /tmp/execsnoop-buildah.XXXXXX)
cleanup() { buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs rmi --all >/dev/null 2>&1 || true; rm -rf "$store"; }
trap cleanup EXIT
b=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
"${b[@]}" build --quiet --isolation chroot --layers=false --timestamp 0 \
	-f "$file" -t "$name" "$@" "$context" >/dev/null
rm -f "$out"
"${b[@]}" push --quiet "$name" "oci-archive:$out:$name"
echo "$name -> $out ($(du -k "$out" | cut -f1) KiB)"
