#!/bin/bash
# Builds an image FROM scratch with buildah and writes it as an OCI archive
# (no registry is needed; `ctr images import` or `skopeo copy` load it).
#
#   build.sh NAME:TAG CONTAINERFILE CONTEXT_DIR OUT.tar [--platforms 'OS/ARCH ...'] [--build-arg K=V]...
#
# Without --platforms: one image for the host's platform. With it: one
# image per platform (`buildah build --platform`, which sets TARGETARCH for
# the Containerfile), gathered in a manifest list and written with all its
# images as an OCI image index (`manifest push --all --format oci`), named
# NAME:TAG in the archive's index.json as a single image would be. Nothing
# of another platform runs: the Containerfiles here have no RUN step.
#
# buildah runs without a daemon: vfs storage (no overlay mount needed) and
# chroot isolation (no user namespace or runtime). Its storage is a
# temporary directory removed on exit, so nothing is left under
# /var/lib/containers.
set -euo pipefail
name=$1 file=$2 context=$3 out=$4
shift 4
platforms=
if [ "${1:-}" = --platforms ]; then
	platforms=$2
	shift 2
fi
store=$(mktemp -d /tmp/execsnoop-buildah.XXXXXX)
cleanup() {
	"${b[@]}" manifest rm "$name" >/dev/null 2>&1 || true
	"${b[@]}" rmi --all >/dev/null 2>&1 || true
	rm -rf "$store"
}
b=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
trap cleanup EXIT
build=(build --quiet --isolation chroot --layers=false --timestamp 0 -f "$file")
rm -f "$out"
if [ -z "$platforms" ]; then
	"${b[@]}" "${build[@]}" -t "$name" "$@" "$context" >/dev/null
	"${b[@]}" push --quiet "$name" "oci-archive:$out:$name"
else
	"${b[@]}" manifest create "$name" >/dev/null
	for p in $platforms; do
		"${b[@]}" "${build[@]}" --platform "$p" --manifest "$name" "$@" "$context" >/dev/null
	done
	"${b[@]}" manifest push --quiet --all --format oci "$name" "oci-archive:$out:$name"
fi
echo "$name${platforms:+ ($platforms)} -> $out ($(du -k "$out" | cut -f1) KiB)"
