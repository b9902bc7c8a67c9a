#!/usr/bin/env bash
# The base image for packaging/Dockerfile, made locally because no container registry is
# reachable here: `debootstrap --variant=minbase bookworm` from deb.debian.org (Debian's
# archive, what apt uses), its root file system packed into a one-layer image with
# `buildah from scratch` + `buildah add` + `buildah commit`, tagged localhost/zapd-base:bookworm.
# It is what docker.io's debian:bookworm-slim is made from (minbase = Essential + apt), slimmed
# the same way: dpkg excludes docs (but their copyright files), man and info pages and message
# translations, for the packages already there and for every package installed later.
#
# Usage: packaging/image-base.sh [--force]   (root; reuses the image when it exists)
# Needs debootstrap and buildah (packaging/install-deps.sh --image).
set -euo pipefail
name=${ZAPD_BASE_IMAGE:-localhost/zapd-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != --force ] && buildah inspect --type image "$name" >/dev/null 2>&1; then
  echo "image-base: $name exists (--force to remake it)" >&2
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "image-base: needs root (debootstrap, buildah's storage)" >&2; exit 1; }

tmp=$(mktemp -d /var/tmp/zapd-base-XXXXXX)
ctr=""
cleanup() {
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "image-base: debootstrap --variant=minbase bookworm ($mirror)" >&2
debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
  || { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
# The slim images' dpkg excludes (debuerreotype's slimify), then what they leave out of the
# packages debootstrap installed.
cat >"$tmp/rootfs/etc/dpkg/dpkg.cfg.d/zapd-slim" <<'CFG'
# The base image of zapd's container (packaging/image-base.sh): no docs, man pages, translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
find "$tmp/rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$tmp/rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$tmp"/rootfs/usr/share/{man,groff,info,lintian,linda,locale}/*
# Also left out: the downloaded .debs, apt's lists (a RUN that installs
# packages runs apt-get update first), logs; the device nodes (the runtime provides /dev).
rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/* \
       "$tmp"/rootfs/var/log/* "$tmp"/rootfs/dev/*
tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .

ctr=$(buildah from scratch)
buildah add "$ctr" "$tmp/rootfs.tar" / >/dev/null
buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label org.opencontainers.image.description="Debian 12 bookworm minbase (debootstrap, local)" "$ctr"
buildah commit -q --rm "$ctr" "$name" >/dev/null
ctr=""
echo "image-base: $name ($(buildah images --format '{{.Size}}' "$name"))" >&2
