#!/usr/bin/env bash
# Installs zapd's build and test dependencies from Debian 12's archive.
# A no-op (no apt-get call at all) when everything is already present.
set -euo pipefail

# Building and running zapd (the web UI's bundle is committed: no Node.js needed).
PACKAGES=(
  build-essential cmake ninja-build pkg-config gzip
  libboost1.81-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libfmt-dev catch2
  libsodium-dev libcurl4-openssl-dev libtomlplusplus-dev libssl-dev
  libhowardhinnant-date-dev libre2-dev librdkafka-dev libjemalloc2 libsimdjson-dev tzdata
  python3 curl
)
# `--test`: what the test suites add: a real SMTP server, and for the web UI's build and
# browser tests Chromium and (unless a Node.js is already installed) Debian's Node.js + npm.
# `--fuzz`: clang 14 and its libFuzzer/sanitizer runtimes for the `fuzz` preset (fuzz/README.md).
# `--package`: `make deb` and its tests: dpkg-shlibdeps (dpkg-dev) for the package's Depends,
# systemd-analyze (systemd; nothing is started) for .ci/check-unit, adduser for the postinst,
# util-linux's setpriv to run the installed zapd as its user.
# `--image`: `make image` and tests/packaging/image_test.sh: buildah (builds and runs the
# container image without a daemon, chroot isolation) and debootstrap (makes the Debian 12
# base image from deb.debian.org, since no container registry is reachable); with them apt
# pulls containers-common, uidmap and iptables (buildah's Depends). Nothing is started.
# `--arm64`: cross-building for a Raspberry Pi (`make arm64`, `make deb-arm64`, .ci/arm64) with
# Debian's multiarch: adds the arm64 architecture to dpkg, then the cross compiler
# (crossbuild-essential-arm64), the arm64 builds of the libraries zapd links (the :arm64 -dev
# packages), pkgconf:arm64 (aarch64-linux-gnu-pkg-config, which finds the arm64 .pc files),
# dpkg-dev (dpkg-shlibdeps for the .deb) and qemu-user (runs the arm64 tests here; no binfmt).
# catch2 (header-only, Multi-Arch: foreign) and nlohmann-json (arch: all) serve both builds.
# libsimdjson-dev is not multi-arch (its :arm64 would replace the amd64 one): the cross build
# takes amd64's headers (the same for every architecture) and the arm64 runtime library.
ARM64=0
for flag in "$@"; do
  case "$flag" in
    --test)
      PACKAGES+=(python3-aiosmtpd chromium)
      if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi
      ;;
    --fuzz) PACKAGES+=(clang-14 libclang-rt-14-dev) ;;
    --package) PACKAGES+=(dpkg-dev systemd adduser util-linux binutils) ;;
    --image) PACKAGES+=(buildah debootstrap) ;;
    --arm64)
      ARM64=1
      PACKAGES+=(crossbuild-essential-arm64 dpkg-dev qemu-user pkgconf:arm64
                 libboost1.81-dev:arm64 libsqlite3-dev:arm64 libfmt-dev:arm64 libsodium-dev:arm64
                 libcurl4-openssl-dev:arm64 libtomlplusplus-dev:arm64
                 libhowardhinnant-date-dev:arm64 libre2-dev:arm64 librdkafka-dev:arm64 libjemalloc2:arm64
                 libsimdjson14:arm64)
      ;;
    *) echo "install-deps: unknown flag $flag (--test, --fuzz, --package, --arm64, --image)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if [ "$ARM64" -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: adding the arm64 architecture: dpkg --add-architecture arm64 (apt then also reads the archive's arm64 package lists)" >&2
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -q
if [ "$ARM64" -eq 1 ]; then
  # An :arm64 library and its amd64 twin are Multi-Arch: same, so they must be the same
  # version: apt upgrades the installed amd64 one to the archive's version. Say which, and
  # never let it remove an amd64 package to make room (e.g. catch2:arm64 would replace catch2).
  plan=$(apt-get install -s -q --no-install-recommends "${missing[@]}")
  if grep -q '^Remv ' <<<"$plan"; then
    echo "install-deps: installing the arm64 packages would REMOVE these packages; not doing it:" >&2
    grep '^Remv ' <<<"$plan" | cut -d' ' -f2 >&2
    exit 1
  fi
  upgraded=$(grep '^Inst [^ ]* \[' <<<"$plan" | cut -d' ' -f2 | grep -v ':arm64$' | tr '\n' ' ' || true)
  if [ -n "$upgraded" ]; then
    echo "install-deps: note: installing the :arm64 packages upgrades these installed amd64 packages to the archive's versions: $upgraded" >&2
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
