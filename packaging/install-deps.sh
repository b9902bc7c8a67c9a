#!/usr/bin/env bash
# Installs zapd's build and test dependencies from Debian 12's archive.
# A no-op (no apt-get call at all) when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libfmt-dev catch2
  libsodium-dev libcurl4-openssl-dev libtomlplusplus-dev libssl-dev
  python3 python3-aiosmtpd curl
)

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
