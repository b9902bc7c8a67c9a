#!/usr/bin/env bash
# Installs zapd's build and test dependencies from Debian 12's archive.
# A no-op (no apt-get call at all) when everything is already present.
set -euo pipefail

# Building and running zapd (the web UI's bundle is committed: no Node.js needed).
PACKAGES=(
  build-essential cmake ninja-build pkg-config gzip
  libboost1.81-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libfmt-dev catch2
  libsodium-dev libcurl4-openssl-dev libtomlplusplus-dev libssl-dev
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
for flag in "$@"; do
  case "$flag" in
    --test)
      PACKAGES+=(python3-aiosmtpd chromium)
      if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi
      ;;
    --fuzz) PACKAGES+=(clang-14 libclang-rt-14-dev) ;;
    --package) PACKAGES+=(dpkg-dev systemd adduser util-linux binutils) ;;
    --image) PACKAGES+=(buildah debootstrap) ;;
    *) echo "install-deps: unknown flag $flag (--test, --fuzz, --package, --image)" >&2; exit 2 ;;
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

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
