#!/usr/bin/env bash
# The container image (CTest `image_run`, label `image`; issue 16). Builds it with `make image`
# unless it exists (ZAPD_IMAGE_REBUILD=1 rebuilds), then with `buildah run --isolation=chroot`
# (podman run cannot run here; chroot isolation can, and shares the host's network):
#   1. the image's configuration: user zapd, ENTRYPOINT zapd, CMD serve, VOLUME /var/lib/zapd,
#      port 8080, listen 0.0.0.0:8080, HEALTHCHECK CMD zapd healthcheck, the CA bundle
#   2. `zapd version` in it
#   3. `zapd healthcheck` with no server: exit 1 (never Docker's reserved 2)
#   4. `zapd serve` in it in the background, as the image's user, its data dir a bind mount of
#      a host temp dir (owned by the image's zapd uid) at /var/lib/zapd, on a free 127.0.0.1
#      port (ZAPD_SERVER_LISTEN, as a user would override it with -e)
#   5. `zapd healthcheck` in it against that server: exit 0; the database is on the host side
#   6. SIGTERM to zapd, exit 0 (`buildah run` returns the command's status). buildah run
#      itself does not forward SIGTERM (it kills its child), so the signal goes to the zapd
#      process it started; under podman/docker zapd is PID 1 and gets it from `stop`.
#
# Usage: image_test.sh [SOURCE_DIR [BUILD_DIR]]   (defaults: this repository, SOURCE_DIR/build)
# Root only (buildah's storage, the bind mount's owner) and only when ZAPD_IMAGE_TEST=1: a
# first build runs debootstrap and apt against deb.debian.org (minutes; not in .ci/run).
# Exit 0 pass, 1 fail, 77 skipped (the reason on stderr).
set -euo pipefail
src=$(realpath "${1:-$(dirname "$0")/../..}")
build=$(realpath -m "${2:-$src/build}")
skip() { echo "image_test: SKIP: $*" >&2; exit 77; }
fail() { echo "image_test: FAIL: $*" >&2; exit 1; }
step() { echo "image_test: $*"; }

[ "${ZAPD_IMAGE_TEST:-}" = 1 ] || skip "builds a container image (debootstrap, apt, minutes): run with ZAPD_IMAGE_TEST=1 (as root), e.g. ZAPD_IMAGE_TEST=1 ctest --test-dir build -L image"
[ "$(id -u)" -eq 0 ] || skip "needs root (buildah's storage, chroot isolation)"

version=$(grep -m1 -o 'zapd VERSION [0-9.]*' "$src/CMakeLists.txt" | cut -d' ' -f3)
image=${ZAPD_IMAGE:-zapd:$version}

# --- the image ---------------------------------------------------------------------------
if [ "${ZAPD_IMAGE_REBUILD:-}" = 1 ] || ! command -v buildah >/dev/null || ! buildah inspect --type image "$image" >/dev/null 2>&1; then
  step "building $image: make image"
  t=$SECONDS
  make -C "$src" image BUILD_DIR="$build" IMAGE="$image" || fail "make image"
  step "make image took $((SECONDS - t)) s"
else
  step "reusing $image (ZAPD_IMAGE_REBUILD=1 rebuilds it)"
fi
step "image $image: $(buildah images --format '{{.Size}}' "$image")"

tmp=$(mktemp -d /tmp/zapd-image-test-XXXXXX)
ctr=""
run_pid=""
cleanup() {
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -KILL "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. configuration --------------------------------------------------------------------
cfg() { buildah inspect --type image --format "$1" "$image"; }
[ "$(cfg '{{.Docker.Config.User}}')" = zapd ] || fail "image user is '$(cfg '{{.Docker.Config.User}}')', not zapd"
[ "$(cfg '{{.Docker.Config.Entrypoint}}')" = "[zapd]" ] || fail "ENTRYPOINT is $(cfg '{{.Docker.Config.Entrypoint}}')"
[ "$(cfg '{{.Docker.Config.Cmd}}')" = "[serve]" ] || fail "CMD is $(cfg '{{.Docker.Config.Cmd}}')"
cfg '{{.Docker.Config.Volumes}}' | grep -q '/var/lib/zapd:' || fail "no VOLUME /var/lib/zapd: $(cfg '{{.Docker.Config.Volumes}}')"
cfg '{{.Docker.Config.ExposedPorts}}' | grep -q '8080/tcp' || fail "8080 not exposed"
cfg '{{.Docker.Config.Env}}' | grep -q 'ZAPD_SERVER_LISTEN=0.0.0.0:8080' || fail "no ZAPD_SERVER_LISTEN=0.0.0.0:8080 in $(cfg '{{.Docker.Config.Env}}')"
[ "$(cfg '{{.Docker.Config.Healthcheck.Test}}')" = "[CMD zapd healthcheck]" ] \
  || fail "HEALTHCHECK is '$(cfg '{{.Docker.Config.Healthcheck.Test}}')' (built without --format docker?)"
step "config: user zapd, ENTRYPOINT [zapd] CMD [serve], VOLUME /var/lib/zapd, 8080, HEALTHCHECK [CMD zapd healthcheck]"

ctr=$(buildah from --name "zapd-image-test-$$" "$image")
brun() { buildah run --isolation=chroot "$@"; }
brun "$ctr" test -s /etc/ssl/certs/ca-certificates.crt || fail "no CA bundle: HTTPS steps would fail"
if brun "$ctr" sh -c 'command -v curl || command -v wget || command -v gcc' >/dev/null 2>&1; then
  fail "the runtime image has curl, wget or a compiler"
fi

# --- 2. zapd version ---------------------------------------------------------------------
out=$(brun "$ctr" zapd version) || fail "zapd version"
grep -q "^zapd $version " <<<"$out" || fail "zapd version printed '$out'"
step "zapd version: $out"

# --- 3. healthcheck without a server -----------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
listen="127.0.0.1:$port"
rc=0; brun -e ZAPD_SERVER_LISTEN="$listen" "$ctr" zapd healthcheck --timeout 1 >"$tmp/hc0.log" 2>&1 || rc=$?
# buildah adds its own lines after the command's; the command's exit code is its exit code.
[ "$rc" -eq 1 ] || { cat "$tmp/hc0.log" >&2; fail "healthcheck with no server exited $rc, want 1"; }
step "zapd healthcheck, no server: exit 1 ($(head -n 1 "$tmp/hc0.log"))"

# --- 4. zapd serve -----------------------------------------------------------------------
uid=$(brun "$ctr" id -u); gid=$(brun "$ctr" id -g)
[ "$uid" != 0 ] || fail "the image's user is root"
mkdir -m 0700 "$tmp/data"
chown "$uid:$gid" "$tmp/data"
brun -v "$tmp/data:/var/lib/zapd" -e ZAPD_SERVER_LISTEN="$listen" "$ctr" zapd serve >"$tmp/serve.log" 2>&1 &
run_pid=$!
step "zapd serve in the image (buildah run pid $run_pid) on $listen, data $tmp/data (uid $uid)"

# --- 5. healthcheck against it -----------------------------------------------------------
ok=0
for _ in $(seq 1 100); do
  kill -0 "$run_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; fail "zapd serve exited early"; }
  if brun -e ZAPD_SERVER_LISTEN="$listen" "$ctr" zapd healthcheck --timeout 1 >"$tmp/hc.log" 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ "$ok" -eq 1 ] || { cat "$tmp/hc.log" "$tmp/serve.log" >&2; fail "zapd healthcheck never exited 0"; }
step "zapd healthcheck: exit 0 ($(head -n 1 "$tmp/hc.log"))"
[ "$(stat -c %u "$tmp/data/zapd.db")" = "$uid" ] || fail "zapd.db not in the bind mount or not owned by the image's zapd"
step "data on the host: $(ls "$tmp/data" | tr '\n' ' ')"

# --- 6. SIGTERM --------------------------------------------------------------------------
# The zapd process under `buildah run` (buildah -> buildah-chroot-runtime -> -exec -> zapd).
zapd_pid=""
descendants() { local p; for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$p"; descendants "$p"; done; }
for p in $(descendants "$run_pid"); do
  if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = zapd ]; then zapd_pid=$p; break; fi
done
[ -n "$zapd_pid" ] || fail "no zapd process under buildah run $run_pid"
kill -TERM "$zapd_pid"
rc=0
for _ in $(seq 1 150); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$run_pid" 2>/dev/null && fail "zapd still runs 15 s after SIGTERM"
wait "$run_pid" || rc=$?
run_pid=""
[ "$rc" -eq 0 ] || { tail -n 20 "$tmp/serve.log" >&2; fail "zapd exited $rc after SIGTERM, want 0"; }
step "SIGTERM: exit 0 (last log line: $(tail -n 1 "$tmp/serve.log"))"
step "PASS"
