#!/usr/bin/env bash
# The .deb on this machine (CTest `deb_install`, label `packaging`; issue 16): dpkg -i it (no
# systemd runs here: the maintainer scripts must cope), run the INSTALLED /usr/bin/zapd as the
# zapd user with /etc/zapd/zapd.toml and /var/lib/zapd on a free port, sign up, a zap whose
# HTTP step reaches a local sink, a webhook, the step arrives, SIGTERM; then dpkg -r (data and
# user kept) and dpkg -P (data, user, config gone). On the way, the README's backup/restore
# flow as root against the package's data dir.
#
# Usage: deb_test.sh BUILD_DIR. Uses BUILD_DIR/zapd_<version>_<arch>.deb when it is newer than
# BUILD_DIR/zapd (what `make deb` leaves), else builds one with cpack into a temp dir.
# It changes the machine (a package, a system user), so it runs only as root and only when
# ZAPD_PACKAGING_TEST=1 (`.ci/run` sets it), and never where zapd is already installed.
# Exit 0 pass, 1 fail, 77 skipped (the reason on stderr).
set -euo pipefail
build=$(realpath "${1:?usage: deb_test.sh BUILD_DIR}")
skip() { echo "deb_test: SKIP: $*" >&2; exit 77; }
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
step() { echo "deb_test: $*"; }

[ "${ZAPD_PACKAGING_TEST:-}" = 1 ] || skip "installs a .deb on this machine: run with ZAPD_PACKAGING_TEST=1 (as root), e.g. ZAPD_PACKAGING_TEST=1 ctest --test-dir build -L packaging"
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, a system user)"
command -v dpkg >/dev/null || skip "no dpkg: not a Debian system"
if dpkg-query -W -f='${Status}' zapd 2>/dev/null | grep -q "installed\|config-files"; then
  skip "a zapd package is already on this machine (dpkg -l zapd); this test would replace and purge it"
fi
getent passwd zapd >/dev/null && skip "a user named zapd exists already; this test would delete it on purge"
[ -e /var/lib/zapd ] && skip "/var/lib/zapd exists already; this test would delete it on purge"

tmp=$(mktemp -d /tmp/zapd-deb-test-XXXXXX)
zapd_pid=""
sink_pid=""
installed=0
cleanup() {
  if [ -n "$zapd_pid" ]; then
    kill -KILL "$zapd_pid" 2>/dev/null || true
    wait "$zapd_pid" 2>/dev/null || true
  fi
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
  # A failed run leaves nothing behind either.
  if [ "$installed" -eq 1 ]; then dpkg -P zapd >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# --- the package -------------------------------------------------------------------------
deb=$(ls -t "$build"/zapd_*_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ] || [ "$deb" -ot "$build/zapd" ]; then
  step "building the .deb with cpack"
  (cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log" >&2; fail "cpack"; }
  deb=$(ls "$tmp"/pkg/zapd_*_*.deb)
fi
step "package $deb"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/zapd ./etc/zapd/zapd.toml ./lib/systemd/system/zapd.service; do
  grep -q " $f\$" <<<"$contents" || fail "$deb has no $f"
done
dpkg-deb -f "$deb" Depends | grep -q "libsqlite3-0" || fail "Depends lacks the shared libraries (shlibdeps): $(dpkg-deb -f "$deb" Depends)"
# What the loader cannot see: libcurl (dlopen()ed on the first transfer), librdkafka
# (dlopen()ed when Kafka is used) and the zone data; jemalloc, the allocator, is linked.
for dep in "libcurl4 (>= 7.85.0)" "librdkafka1 (>= 1.9.0)" libjemalloc2 tzdata libre2-9 libdate-tz3 libsimdjson14; do
  dpkg-deb -f "$deb" Depends | grep -qF "$dep" || fail "Depends lacks $dep: $(dpkg-deb -f "$deb" Depends)"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/zapd/zapd.toml || fail "/etc/zapd/zapd.toml is not a conffile"
dpkg-deb -x "$deb" "$tmp/x"
if readelf -S "$tmp/x/usr/bin/zapd" | grep -q -e '\.symtab' -e '\.debug_'; then fail "/usr/bin/zapd in the package is not stripped"; fi

# --- install (no systemd running here) ---------------------------------------------------
step "dpkg -i"
installed=1
dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1 || { cat "$tmp/dpkg-i.log" >&2; fail "dpkg -i"; }
uid=$(id -u zapd) || fail "no zapd user after install"
[ "$uid" -lt 1000 ] || fail "zapd is not a system user (uid $uid)"
getent group zapd >/dev/null || fail "no zapd group"
[ "$(stat -c '%a %U %G' /var/lib/zapd)" = "700 zapd zapd" ] || fail "/var/lib/zapd is $(stat -c '%a %U %G' /var/lib/zapd), expected 700 zapd zapd"
[ -x /usr/bin/zapd ] || fail "/usr/bin/zapd missing"
grep -qx 'data_dir = "/var/lib/zapd"' /etc/zapd/zapd.toml || fail "/etc/zapd/zapd.toml does not put data_dir in /var/lib/zapd"
[ -L /etc/systemd/system/multi-user.target.wants/zapd.service ] || fail "zapd.service is not enabled (no multi-user.target.wants link)"

# --- run the installed binary as the zapd user -------------------------------------------
cat >"$tmp/sink.py" <<'PY'
# A local HTTP sink: every POST body to the file named first, answered 200.
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b" " + body + b"\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$tmp/sink.py" "$tmp/sink.out" >"$tmp/sink.port" & sink_pid=$!
for _ in $(seq 100); do [ -s "$tmp/sink.port" ] && break; sleep 0.05; done
sink_port=$(cat "$tmp/sink.port")
[ -n "$sink_port" ] || fail "the sink did not start"

# Like the unit: the zapd user and group, no capabilities, umask 0077, in /var/lib/zapd. The
# server's subshell execs, so the background job's pid is zapd's own.
as_zapd() { (cd /var/lib/zapd && umask 0077 && exec setpriv --reuid=zapd --regid=zapd --init-groups --inh-caps=-all "$@"); }
step "serve as zapd"
(cd /var/lib/zapd && umask 0077 && exec setpriv --reuid=zapd --regid=zapd --init-groups --inh-caps=-all \
  /usr/bin/zapd --config /etc/zapd/zapd.toml --listen 127.0.0.1:0 --set actions.http.allow=127.0.0.1 \
  --set auth.hash_memlimit_kib=8192 --set auth.hash_opslimit=1 serve 2>"$tmp/zapd.log") & zapd_pid=$!
port=""
for _ in $(seq 200); do
  port=$(sed -n 's/.*zapd\.listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/zapd.log")
  [ -n "$port" ] && break
  kill -0 "$zapd_pid" 2>/dev/null || { cat "$tmp/zapd.log" >&2; fail "zapd exited at start"; }
  sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/zapd.log" >&2; fail "zapd did not start listening"; }
[ "$(ps -o user= -p "$zapd_pid")" = zapd ] || fail "zapd does not run as the zapd user"
as_zapd /usr/bin/zapd --config /etc/zapd/zapd.toml --listen "127.0.0.1:$port" healthcheck >/dev/null || fail "zapd healthcheck"

api=http://127.0.0.1:$port/api/v1
json() { python3 -c "import sys,json; print(json.load(sys.stdin)$1)"; }
curl -fsS -XPOST "$api/user/signup" -d '{"username":"deb@example.com","password":"a long password","name":"Deb"}' >/dev/null || fail "sign-up"
token=$(curl -fsS -XPOST "$api/user/signin" -d '{"username":"deb@example.com","password":"a long password"}' | json '["token"]')
zap=$(curl -fsS -XPOST "$api/zap" -H "Authorization: Bearer $token" -d '{"name":"deb test","availableTriggerId":"webhook","triggerMetadata":{},
  "actions":[{"availableActionId":"http","actionMetadata":{"url":"http://127.0.0.1:'"$sink_port"'/hook","body":"{\"from\":\"{{comment.email}}\"}"}}]}')
# The webhook URL is built from server.public_url; its path on the port this run listens on.
path=$(python3 -c "import sys,urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path)" "$(json '["webhookUrl"]' <<<"$zap")")
curl -fsS -XPOST "http://127.0.0.1:$port$path" -H 'Content-Type: application/json' -d '{"comment":{"email":"ada@example.com"}}' >/dev/null || fail "webhook"
for _ in $(seq 200); do grep -q 'ada@example.com' "$tmp/sink.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^/hook {"from":"ada@example.com"}$' "$tmp/sink.out" 2>/dev/null || fail "the HTTP step did not reach the sink: $(cat "$tmp/sink.out" 2>/dev/null)"
step "the step reached the sink"
bad=$(find /var/lib/zapd -mindepth 1 \( ! -user zapd -o -perm /077 \) -printf '%p %u %m\n')
[ -z "$bad" ] || fail "files in /var/lib/zapd not owner-only zapd: $bad"

# The README's admin flow: back up while it runs (as root), stop, restore as root, start again.
/usr/bin/zapd --config /etc/zapd/zapd.toml backup "$tmp/backup.db" >/dev/null || fail "zapd backup as root"

kill -TERM "$zapd_pid"
rc=0; wait "$zapd_pid" || rc=$?
zapd_pid=""
[ "$rc" -eq 0 ] || { cat "$tmp/zapd.log" >&2; fail "zapd exited $rc after SIGTERM"; }
step "SIGTERM: exit 0"

/usr/bin/zapd --config /etc/zapd/zapd.toml restore "$tmp/backup.db" >/dev/null || fail "zapd restore as root"
bad=$(find /var/lib/zapd -mindepth 1 -name 'zapd.*' ! -user zapd -printf '%p %u\n')
[ -z "$bad" ] || fail "restore as root left files the zapd user cannot open: $bad"
(cd /var/lib/zapd && umask 0077 && exec setpriv --reuid=zapd --regid=zapd --init-groups --inh-caps=-all \
  /usr/bin/zapd --config /etc/zapd/zapd.toml --listen 127.0.0.1:0 serve 2>"$tmp/zapd2.log") & zapd_pid=$!
for _ in $(seq 200); do grep -q zapd.listening "$tmp/zapd2.log" && break; sleep 0.05; done
port=$(sed -n 's/.*zapd\.listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/zapd2.log")
[ -n "$port" ] || { cat "$tmp/zapd2.log" >&2; fail "zapd did not start on the restored database"; }
token=$(curl -fsS -XPOST "http://127.0.0.1:$port/api/v1/user/signin" -d '{"username":"deb@example.com","password":"a long password"}' | json '["token"]')
runs=$(curl -fsS "http://127.0.0.1:$port/api/v1/runs" -H "Authorization: Bearer $token" | json '["runs"].__len__()')
[ "$runs" = 1 ] || fail "the restored database has $runs runs, expected 1"
kill -TERM "$zapd_pid"; wait "$zapd_pid" || fail "zapd on the restored database did not stop cleanly"
zapd_pid=""
step "backup as root while serving, restore as root, serve again as zapd: the run is there"

# --- remove: data kept; purge: everything gone --------------------------------------------
dpkg -r zapd >"$tmp/dpkg-r.log" 2>&1 || { cat "$tmp/dpkg-r.log" >&2; fail "dpkg -r"; }
[ ! -e /usr/bin/zapd ] || fail "/usr/bin/zapd left after remove"
[ -f /var/lib/zapd/zapd.db ] || fail "remove deleted /var/lib/zapd/zapd.db"
getent passwd zapd >/dev/null || fail "remove deleted the zapd user"
[ -f /etc/zapd/zapd.toml ] || fail "remove deleted the conffile /etc/zapd/zapd.toml"
dpkg-query -W -f='${Status}' zapd | grep -q config-files || fail "after remove: $(dpkg-query -W -f='${Status}' zapd)"
step "dpkg -r: data, user and config kept"

dpkg -P zapd >"$tmp/dpkg-p.log" 2>&1 || { cat "$tmp/dpkg-p.log" >&2; fail "dpkg -P"; }
installed=0
[ ! -e /var/lib/zapd ] || fail "purge left /var/lib/zapd"
! getent passwd zapd >/dev/null || fail "purge left the zapd user"
! getent group zapd >/dev/null || fail "purge left the zapd group"
[ ! -e /etc/zapd ] || fail "purge left /etc/zapd"
[ ! -e /etc/systemd/system/multi-user.target.wants/zapd.service ] || fail "purge left the multi-user.target.wants link"
[ ! -e /lib/systemd/system/zapd.service ] || fail "purge left the unit file"
! dpkg-query -W -f='${Status}' zapd 2>/dev/null | grep -q "installed\|config-files" || fail "dpkg still knows zapd after purge"
step "dpkg -P: data, user, group, config and unit gone"
rm -rf "$tmp"
echo "deb_test: ok"
