#!/usr/bin/env bash
# Webhook ingestion throughput: zapd against nginx answering a constant 200, same box, same
# load (wrk -t2 -c64, a ~200-byte JSON body), then a check that every 2xx has its run.
#
#   bench/ingest.sh [seconds]        (default 20; needs a built ./build/zapd)
#
# Environment: ZAPD (binary, default ./build/zapd), SYNC (full|normal, default full),
# CONNECTIONS (default 64), THREADS (wrk threads, default 2), PERF (a file: perf record -g
# of zapd during the run).
# The worker is off (worker.enabled=off): this measures accepting and queueing only; every
# step stays queued, so the check below can count a job or outbox row per run.
# Installs wrk and nginx-light from Debian's archive when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-20}"
ZAPD="${ZAPD:-./build/zapd}"
SYNC="${SYNC:-full}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"

. bench/common.sh
bench_need wrk nginx sqlite3
[ -x "$ZAPD" ] || { echo "bench: $ZAPD not found; build first (cmake --preset default && cmake --build build)" >&2; exit 1; }

bench_scratch zapd-bench

# The webhook body: ~200 bytes of JSON, like a typical event.
BODY='{"event":"comment.created","id":"evt_000000000000000001","comment":{"id":12345,"email":"ada@example.com","name":"Ada Lovelace","text":"The engine might compose elaborate pieces of music."},"sentAt":"2026-11-23T10:00:00Z"}'
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d ok=%d non2xx=%d sockerr=%d seconds=%.3f p50_us=%d p99_us=%d\n",
    summary.requests, summary.requests - non2xx - errors, non2xx, errors, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99)))
end
LUA

run_wrk() {  # url -> prints the RESULT line
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/post.lua" "$1" | grep '^RESULT'
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# --- zapd -------------------------------------------------------------------------------
ZPORT=$(free_port)
"$ZAPD" serve --data-dir "$WORK/data" --listen "127.0.0.1:$ZPORT" --set log.level=warn \
  --set store.synchronous="$SYNC" --set auth.hash_memlimit_kib=8192 --set auth.hash_opslimit=1 \
  --set hooks.free_zap_rate=0 --set hooks.free_user_rate=0 --set worker.enabled=off >"$WORK/zapd.log" 2>&1 &
ZPID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ZPORT/healthz" >/dev/null && break; sleep 0.1; done
API="http://127.0.0.1:$ZPORT/api/v1"
curl -sf -XPOST "$API/user/signup" -d '{"username":"bench@example.com","password":"bench-password","name":"Bench"}' >/dev/null
TOKEN=$(curl -sf -XPOST "$API/user/signin" -d '{"username":"bench@example.com","password":"bench-password"}' |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
ZAP=$(curl -sf -XPOST "$API/zap" -H "Authorization: Bearer $TOKEN" \
  -d '{"availableTriggerId":"webhook","triggerMetadata":{},"actions":[{"availableActionId":"http","actionMetadata":{"url":"https://example.com/hook","method":"POST","body":"{\"email\":\"{{comment.email}}\"}"}}]}')
HOOK=$(python3 -c 'import sys,json; z=json.loads(sys.argv[1]); print(z["webhookUrl"].split("/hooks/",1)[1])' "$ZAP")
URL="http://127.0.0.1:$ZPORT/hooks/$HOOK"
curl -sf -XPOST "$URL" -H 'Content-Type: application/json' -d "$BODY" >/dev/null  # warm-up: 1 run

echo "zapd:  wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s POST $URL (synchronous=$SYNC)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$ZPID/stat"; }  # utime + stime, clock ticks
CPU0=$(cpu_ticks)
# PERF=FILE: a call-graph profile of zapd during the run (`perf report -i FILE --no-children`).
if [ -n "${PERF:-}" ]; then
  perf record -q --call-graph "${PERF_CG:-fp}" -o "$PERF" -p "$ZPID" -- sleep "$((DURATION > 2 ? DURATION - 1 : 1))" >/dev/null 2>&1 &
  PERFPID=$!
fi
Z=$(run_wrk "$URL")
[ -n "${PERF:-}" ] && wait "$PERFPID"
echo "  $Z"
# zapd's own CPU time over the run, per acknowledged webhook: steadier than the rate on a
# shared box (other load slows both zapd and nginx, but does not add to zapd's CPU time).
ZCPU=$(( $(cpu_ticks) - CPU0 ))
ZRSS=$(awk '/VmHWM/ {print $2}' /proc/$ZPID/status)
writer_summary "$ZPORT"
kill -TERM "$ZPID"; wait "$ZPID" || true; ZPID=""
RUNS=$(sqlite3 "$WORK/data/zapd.db" 'SELECT count(*) FROM runs')
JOBS=$(sqlite3 "$WORK/data/zapd.db" 'SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM outbox)')

# --- nginx, constant 200 --------------------------------------------------------------------
start_nginx 2 "location / { default_type application/json; return 200 '{\"message\":\"webhook received\"}'; }"
echo "nginx: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s POST http://127.0.0.1:$NPORT/ (constant 200)"
N=$(run_wrk "http://127.0.0.1:$NPORT/")
echo "  $N"

# --- figures ---------------------------------------------------------------------------------
ZOK=$(field ok "$Z"); ZS=$(field seconds "$Z"); NOK=$(field ok "$N"); NS=$(field seconds "$N")
python3 - "$ZOK" "$ZS" "$NOK" "$NS" "$RUNS" "$JOBS" "$ZRSS" "$ZCPU" "$(getconf CLK_TCK)" <<'PY'
import sys
zok, zs, nok, ns, runs, jobs, rss = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cpu_s = int(sys.argv[8]) / int(sys.argv[9])
zr, nr = zok / zs, nok / ns
print(f"zapd  {zr:10.0f} webhooks/s (2xx)   peak RSS {rss/1024:.1f} MiB   CPU {cpu_s * 1e6 / max(zok, 1):.1f} us per webhook")
print(f"nginx {nr:10.0f} requests/s")
print(f"ratio {zr/nr:10.2f}   (target >= 0.25, issue 18; long-run goal 0.5)")
# +1: the warm-up request before wrk.
ok = runs >= zok + 1 and jobs == runs
print(f"runs in DB {runs}, jobs+outbox {jobs}, 2xx answers {zok} (+1 warm-up): {'OK' if ok else 'MISSING RUNS'}")
sys.exit(0 if ok else 1)
PY
