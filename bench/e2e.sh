#!/usr/bin/env bash
# End-to-end execution: webhook -> run -> queue -> worker -> HTTP action -> sink.
#
#   bench/e2e.sh [seconds]     (default 20; needs a built ./build/zapd)
#
# 1. latency: at each rate of RATES (default "1000 5000" webhooks/s) for N seconds, into a zap
#    with one HTTP action to a local sink that records when each run's step arrives:
#    p50/p99/max from the webhook's 2xx to that, and whether every run completed.
# 2. throughput: a backlog queued with the worker off, then a worker-only process drains it
#    into nginx (constant 200): actions completed per second, and the ratio to what nginx
#    answers wrk (same connections) in the same run.
# 3. concurrency: a sink that answers after 200 ms: most requests in flight at once, and
#    zapd's peak RSS.
# Installs wrk and nginx-light from Debian's archive when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LATENCY="${1:-20}"
ZAPD="${ZAPD:-./build/zapd}"
RATES="${RATES:-1000 5000}"
SECTIONS="${SECTIONS:-1 2 3}"   # which of the three to run
# Section 1's sender and sink: bench/e2e_load.cpp (built with the tests: ./build/bench/e2e_load),
# which sends 5,000/s where the Python one (bench/e2e_tool.py, LOADGEN=python) cannot.
LOADGEN="${LOADGEN:-./build/bench/e2e_load}"

. bench/common.sh
bench_need wrk nginx
[ -x "$ZAPD" ] || { echo "bench: $ZAPD not found; build first" >&2; exit 1; }

WORK="$(mktemp -d /tmp/zapd-e2e.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

write_post_lua

if [[ " $SECTIONS " == *" 1 "* ]]; then
for RATE in $RATES; do
  echo "== 1. latency at $RATE webhooks/s for ${SECONDS_LATENCY} s"
  start_zapd "latency-$RATE"
  SINK=$(free_port)
  make_zap "http://127.0.0.1:$SINK/hook"
  CPU0=$(awk '{print $14 + $15}' "/proc/$ZPID/stat")
  if [ -x "$LOADGEN" ]; then
    "$LOADGEN" "$HOOK" "$SINK" "$RATE" "$SECONDS_LATENCY" || echo "  (not every run completed)"
  else
    python3 bench/e2e_tool.py latency "$HOOK" "$SINK" "$RATE" "$SECONDS_LATENCY" || echo "  (not every run completed)"
  fi
  writer_summary "$ZPORT"
  python3 -c "import sys; print(f'  zapd CPU {(int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]) * 1e6 / (int(sys.argv[4]) * int(sys.argv[5])):.0f} us per run')" \
    "$CPU0" "$(awk '{print $14 + $15}' "/proc/$ZPID/stat")" "$(getconf CLK_TCK)" "$RATE" "$SECONDS_LATENCY"
  stop_zapd
done
fi

if [[ " $SECTIONS " == *" 2 "* ]]; then
echo "== 2. actions/s to a fast sink (nginx, constant 200)"
start_nginx 1 "location / { return 200 '{}'; }"
PIDS+=("$NPID")
# Queue a backlog with the worker off, then time a worker-only process draining it.
start_zapd throughput --set worker.enabled=off
make_zap "http://127.0.0.1:$NPORT/hook"
wrk -t1 -c32 -d5s -s "$WORK/post.lua" "$HOOK" >/dev/null
RUNS=$(metric zapd_hooks_ingested_total)
stop_zapd
"$ZAPD" serve --data-dir "$WORK/throughput" --listen "127.0.0.1:$ZPORT" --set log.level=warn \
  --set actions.http.allow=127.0.0.1 --set queue.free_concurrency="${DRAIN_CONCURRENCY:-256}" --set worker.claim_batch=128 \
  >>"$WORK/throughput.log" 2>&1 &
ZPID=$!; PIDS+=("$ZPID")
T0=$(date +%s.%N)
# PERF=FILE: a call-graph profile of the draining process (PERF_CG: perf's --call-graph, default fp).
if [ -n "${PERF:-}" ]; then
  perf record -q --call-graph "${PERF_CG:-fp}" -o "$PERF" -p "$ZPID" >/dev/null 2>&1 &
  PERFPID=$!
fi
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ZPORT/healthz" >/dev/null && break; sleep 0.05; done
while :; do
  DONE=$(metric 'zapd_worker_steps_total{outcome="succeeded"}'); DONE=${DONE:-0}
  [ "$DONE" -ge "$RUNS" ] && break
  sleep 0.1
done
T1=$(date +%s.%N)
CPU_TICKS=$(awk '{print $14 + $15}' "/proc/$ZPID/stat")  # utime + stime of the draining process
[ -n "${PERF:-}" ] && { kill -INT "$PERFPID"; wait "$PERFPID" || true; }
stop_zapd
# The reference: nginx answering the same kind of request over the same number of connections.
NGINX_RPS=$(nginx_rps "http://127.0.0.1:$NPORT/hook")
python3 -c "import sys; r=int(sys.argv[1]); t=float(sys.argv[3])-float(sys.argv[2]); n=float(sys.argv[4]); print(f'{r} queued steps executed in {t:.1f} s: {r/t:.0f} actions/s (worker alone, from process start); nginx {n:.0f} requests/s; ratio {r/t/n:.3f} (target >= 0.15); CPU {int(sys.argv[5]) / int(sys.argv[6]) * 1e6 / r:.0f} us per action')" "$RUNS" "$T0" "$T1" "$NGINX_RPS" "$CPU_TICKS" "$(getconf CLK_TCK)"

fi

if [[ " $SECTIONS " == *" 3 "* ]]; then
echo "== 3. concurrency against a sink answering after 200 ms"
SINK=$(free_port)
python3 bench/e2e_tool.py inflight "$SINK" 200 25 > "$WORK/inflight.txt" &
SPID=$!; PIDS+=("$SPID")
start_zapd inflight --set queue.free_concurrency=2000 --set worker.claim_batch=500
make_zap "http://127.0.0.1:$SINK/slow"
wrk -t1 -c32 -d2s -s "$WORK/post.lua" "$HOOK" >/dev/null
RUNS=$(metric zapd_hooks_ingested_total)
PEAK_INFLIGHT=0
while :; do
  DONE=$(metric 'zapd_worker_steps_total{outcome="succeeded"}'); DONE=${DONE:-0}
  NOW=$(metric zapd_worker_in_flight); [ "${NOW:-0}" -gt "$PEAK_INFLIGHT" ] && PEAK_INFLIGHT=$NOW
  [ "$DONE" -ge "$RUNS" ] && break
  sleep 0.1
done
RSS=$(awk '/VmHWM/ {print $2}' /proc/$ZPID/status)
THREADS=$(awk '/Threads/ {print $2}' /proc/$ZPID/status)
echo "$RUNS runs through a 200 ms sink; zapd saw up to $PEAK_INFLIGHT attempts in flight; peak RSS $((RSS / 1024)) MiB, $THREADS threads"
stop_zapd
wait "$SPID" || true
cat "$WORK/inflight.txt"
fi
