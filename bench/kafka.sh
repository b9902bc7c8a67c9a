#!/usr/bin/env bash
# The Kafka fleet (issue 15) against the embedded queue, same box, same run:
#
#   bench/kafka.sh [seconds]     (default 20; needs ./build/zapd built with ZAPD_WITH_KAFKA and
#                                 ./build/tests/kafka_mock, built here when missing)
#
# The fleet: librdkafka's mock cluster (tests/support/kafka_mock.cpp: 3 brokers, topics
# zapd.steps.free/paid and zapd.results with 4 partitions, created by the helper since the mock
# has no Admin API: ZAPD_KAFKA_CREATE_TOPICS=off), a primary (`zapd serve`, queue.backend=kafka,
# worker.enabled=off) and two `zapd worker`s; a fresh cluster and data dir for each measurement.
#
# 1. latency at RATE (default 1,000) webhooks/s for N s, 2xx -> sink (the sender and sink of
#    bench/e2e.sh: LOADGEN, default ./build/bench/e2e_load, built here when missing; LOADGEN=python
#    for bench/e2e_tool.py, which takes 30-45 % of a core at 1,000/s beside the fleet):
#    the embedded queue (bench/e2e.sh section 1), then the fleet once per fetch.wait.max.ms of
#    FETCH_WAITS (default "2": librdkafka's mock answers a fetch that found no data only when
#    its wait ends, even if data came meanwhile, where a real broker answers as soon as
#    fetch.min.bytes are there; a short wait stands in for that, at the CPU of more fetches). Before the
#    fleet is measured, a warm-up burst runs until both workers have executed steps (the
#    consumer groups have joined and balanced: the mock takes 3 s for a first join).
# 2. drain to nginx (constant 200): the embedded queue (bench/e2e.sh section 2: a worker-only
#    process draining a backlog), then the fleet: a backlog fired with wrk for BACKLOG_SECONDS
#    (default 5, as e2e.sh) into the primary with no worker running, published to the cluster;
#    then two workers (DRAIN_CONCURRENCY/2 slots each, default 128) start together (one group
#    generation, no rebalance) and the rate is the steps the primary records per second from
#    the workers' first step (the mock's 3 s group join left out) until the backlog is done;
#    the ratio is to nginx answering wrk in the same run. The drain's cluster has
#    DRAIN_PARTITIONS (default 16) partitions for zapd.steps.free and zapd.results: the mock
#    keeps at most 5 MiB per partition (rdkafka_mock.c, max_size) and silently drops the
#    oldest messages beyond, about 6,000 step messages per partition; a larger backlog loses
#    steps (the drain then never completes).
#
# KAFKA_PROPERTIES (e.g. "linger.ms=5"; zapd's producer sets linger.ms=1) is appended to
# fetch.wait.max.ms for every client. SECTIONS selects any of "1 2 3" (default all); ROUNDS
# (default 1) repeats sections 1 (embedded, then each fetch wait) and 3, so that a shared box's
# noise hits all of them.
#
# 3. one Kafka hop with nothing of zapd on it (bench/kafka_hop.cpp, HOP, default
#    ./build/bench/kafka_hop): one producer and one consumer configured as zapd's, RATE messages/s
#    for N s through a fresh mock cluster, once per fetch wait: send -> poll p50 / p99. A step
#    crosses one such hop on its way to the sink, so this is the floor under 1b's latency that
#    the embedded queue does not pay.
set -Eeuo pipefail
trap 'echo "bench/kafka.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECS="${1:-20}"
ZAPD="${ZAPD:-./build/zapd}"
KAFKA_MOCK="${KAFKA_MOCK:-./build/tests/kafka_mock}"
LOADGEN="${LOADGEN:-./build/bench/e2e_load}"
RATE="${RATE:-1000}"
FETCH_WAITS="${FETCH_WAITS:-2}"
KAFKA_PROPERTIES="${KAFKA_PROPERTIES:-}"
SECTIONS="${SECTIONS:-1 2 3}"
HOP="${HOP:-./build/bench/kafka_hop}"
ROUNDS="${ROUNDS:-1}"
DRAIN_CONCURRENCY="${DRAIN_CONCURRENCY:-256}"
BACKLOG_SECONDS="${BACKLOG_SECONDS:-5}"
DRAIN_PARTITIONS="${DRAIN_PARTITIONS:-16}"

. bench/common.sh
bench_need wrk nginx
[ -x "$ZAPD" ] || { echo "bench: $ZAPD not found; build first" >&2; exit 1; }
"$ZAPD" worker --help >/dev/null 2>&1 || { echo "bench: $ZAPD has no \`worker\` command (ZAPD_WITH_KAFKA=OFF?)" >&2; exit 1; }
if [ ! -x "$KAFKA_MOCK" ]; then
  [ "$KAFKA_MOCK" = ./build/tests/kafka_mock ] && cmake --build build --target kafka_mock -j2 >/dev/null
  [ -x "$KAFKA_MOCK" ] || { echo "bench: $KAFKA_MOCK not found" >&2; exit 1; }
fi
if [ "$LOADGEN" = ./build/bench/e2e_load ] && [ ! -x "$LOADGEN" ]; then
  cmake --build build --target e2e_load -j2 >/dev/null || LOADGEN=python
fi
export LOADGEN  # section 1a (bench/e2e.sh) sends with the same one
if [[ " $SECTIONS " == *" 3 "* ]]; then
  if [ "$HOP" = ./build/bench/kafka_hop ] && [ ! -x "$HOP" ]; then cmake --build build --target kafka_hop -j2 >/dev/null || true; fi
  [ -x "$HOP" ] || { echo "bench: $HOP not found (section 3); build it: cmake --build build --target kafka_hop" >&2; exit 1; }
fi

WORK="$(mktemp -d /tmp/zapd-kafka.XXXXXX)"
PIDS=()
cleanup() {  # SIGTERM, then SIGKILL what is left after 10 s (a worker can hang closing its consumer)
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; done
    kill -0 "$p" 2>/dev/null || break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT
write_post_lua
props() { echo "fetch.wait.max.ms=$1${KAFKA_PROPERTIES:+;$KAFKA_PROPERTIES}"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# start_mock NAME [kafka_mock args...]: a mock cluster of 3 brokers (MPID, BOOTSTRAP).
start_mock() {
  local name="$1"; shift
  rm -f "$WORK/$name.mock-in"; mkfifo "$WORK/$name.mock-in"
  "$KAFKA_MOCK" --brokers 3 "$@" <"$WORK/$name.mock-in" >"$WORK/$name.mock-out" 2>"$WORK/$name.mock-err" &
  MPID=$!; PIDS+=("$MPID")
  exec 7>"$WORK/$name.mock-in"   # the helper exits at EOF on its stdin: hold it open
  BOOTSTRAP=""
  for _ in $(seq 100); do
    BOOTSTRAP=$(awk '$1=="bootstrap" {print $2}' "$WORK/$name.mock-out")
    [ -n "$BOOTSTRAP" ] && break; sleep 0.05
  done
  [ -n "$BOOTSTRAP" ] || { echo "bench: kafka_mock did not start: $(cat "$WORK/$name.mock-err")" >&2; exit 1; }
}
# start_fleet NAME FETCH_WAIT_MS [worker --set args...]: the mock cluster (MPID), the primary
# (ZPORT, ZPID, API, TOKEN as start_zapd) and two workers (WPIDS, WPORTS).
start_fleet() {
  FLEETS=$((${FLEETS:-0} + 1))
  local name="$1.$FLEETS" wait_ms=$2; shift 2
  start_mock "$name" --topic "zapd.steps.free:${PARTITIONS:-4}:3" --topic zapd.steps.paid:4:3 --topic "zapd.results:${PARTITIONS:-4}:3"
  ZAPD_ENV=(ZAPD_QUEUE_BACKEND=kafka ZAPD_KAFKA_BROKERS="$BOOTSTRAP" ZAPD_KAFKA_CREATE_TOPICS=off
            ZAPD_KAFKA_PROPERTIES="$(props "$wait_ms")")
  WPIDS=(); WPORTS=()
  start_zapd "$name" --set worker.enabled=off
  FLEET=$name
  [ "${NO_WORKERS:-}" ] || start_workers "$@"
}
# start_workers [--set args...]: two `zapd worker`s for the fleet FLEET (WPIDS, WPORTS).
start_workers() {
  WPIDS=(); WPORTS=()
  local i port
  for i in 1 2; do
    port=$(free_port)
    env "${ZAPD_ENV[@]}" "$ZAPD" worker --set log.level=warn --set actions.http.allow=127.0.0.1 \
      --set kafka.fleet_key_file="$WORK/$FLEET/fleet.key" --set worker.listen="127.0.0.1:$port" "$@" \
      >"$WORK/$FLEET.worker$i.log" 2>&1 &
    WPIDS+=("$!"); WPORTS+=("$port"); PIDS+=("$!")
  done
  for port in "${WPORTS[@]}"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  done
}
# stop_fleet: SIGTERM to the workers (KILL after 20 s, reported), the primary and the cluster.
stop_fleet() {
  local p i st
  for i in "${!WPIDS[@]}"; do
    p=${WPIDS[$i]}
    if ! kill -0 "$p" 2>/dev/null; then
      st=0; wait "$p" || st=$?; echo "  (worker $((i + 1)) had exited before the end, status $st; log: $(tail -n 2 "$WORK/$FLEET.worker$((i + 1)).log" | tr '\n' ' '))"
      continue
    fi
    kill -TERM "$p"
  done
  for p in "${WPIDS[@]}"; do
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { echo "  (a worker did not exit within 20 s of SIGTERM: killed)"; kill -KILL "$p"; }
    wait "$p" 2>/dev/null || true
  done
  stop_zapd
  exec 7>&-
  kill -TERM "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true
}
recorded() { local v; v=$(metric 'zapd_fleet_results_total{outcome="succeeded"}'); echo "${v:-0}"; }
executed_by() { local v; v=$(metric_at "$1" 'zapd_fleet_steps_executed_total{outcome="succeeded"}'); echo "${v:-0}"; }

# warm_up URL: a zap to URL fed small bursts until both workers have executed steps and the
# primary has recorded every run fired so far (at most 60 s).
warm_up() {
  local hook t0=$SECONDS fired=0
  make_zap "$1"; hook=$HOOK
  while :; do
    wrk -t1 -c2 -d1s -s "$WORK/post.lua" "$hook" >/dev/null
    fired=$(metric zapd_hooks_ingested_total)
    for _ in $(seq 20); do [ "$(recorded)" -ge "$fired" ] && break; sleep 0.1; done
    if [ "$(executed_by "${WPORTS[0]}")" -gt 0 ] && [ "$(executed_by "${WPORTS[1]}")" -gt 0 ] && [ "$(recorded)" -ge "$fired" ]; then
      break
    fi
    [ $((SECONDS - t0)) -lt 60 ] || { echo "  (warm-up: the workers did not both take work within 60 s)"; break; }
  done
  echo "  warm-up: $fired runs in $((SECONDS - t0)) s; worker steps $(executed_by "${WPORTS[0]}") + $(executed_by "${WPORTS[1]}")"
}
past() { awk -v s="$1" -v t0="$2" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - t0 > s) }'; }  # SECONDS SINCE
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

if [[ " $SECTIONS " == *" 1 "* ]]; then
for ROUND in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "== round $ROUND of $ROUNDS"
  echo "== 1a. embedded queue: latency at $RATE webhooks/s for $SECS s (load $(load))"
  SECTIONS=1 RATES="$RATE" ZAPD="$ZAPD" bench/e2e.sh "$SECS" | sed '/^==/d; s/^/  /'
  for W in $FETCH_WAITS; do
    echo "== 1b. Kafka fleet (primary + 2 workers, $(props "$W")): latency at $RATE webhooks/s for $SECS s"
    start_fleet "latency-$W" "$W"
    start_nginx 1 "location / { return 200 '{}'; }"; PIDS+=("$NPID")
    warm_up "http://127.0.0.1:$NPORT/warm"
    kill "$NPID"; wait "$NPID" 2>/dev/null || true
    SINK=$(free_port)
    make_zap "http://127.0.0.1:$SINK/hook"
    echo "  load before: $(load)"
    if [ -x "$LOADGEN" ]; then
      "$LOADGEN" "$HOOK" "$SINK" "$RATE" "$SECS" | sed 's/^/  /' || echo "  (not every run completed)"
    else
      python3 bench/e2e_tool.py latency "$HOOK" "$SINK" "$RATE" "$SECS" | sed 's/^/  /' || echo "  (not every run completed)"
    fi
    echo "  load after: $(load)"
    stop_fleet
  done
done
fi

if [[ " $SECTIONS " == *" 2 "* ]]; then
  echo "== 2a. embedded queue: actions/s to nginx (load $(load))"
  SECTIONS=2 ZAPD="$ZAPD" DRAIN_CONCURRENCY="$DRAIN_CONCURRENCY" bench/e2e.sh | sed '/^==/d; s/^/  /'
  W="${FETCH_WAITS%% *}"
  echo "== 2b. Kafka fleet ($(props "$W")): actions/s to nginx, two workers with $((DRAIN_CONCURRENCY / 2)) slots each"
  start_nginx 1 "location / { return 200 '{}'; }"; PIDS+=("$NPID")
  NO_WORKERS=1 PARTITIONS=$DRAIN_PARTITIONS start_fleet drain "$W"
  make_zap "http://127.0.0.1:$NPORT/hook"
  wrk -t1 -c32 -d"${BACKLOG_SECONDS}s" -s "$WORK/post.lua" "$HOOK" >/dev/null
  RUNS=$(metric zapd_hooks_ingested_total)
  for _ in $(seq 600); do   # every step of the backlog published before the workers start
    [ "$(metric zapd_fleet_steps_published_total)" -ge "$RUNS" ] && break; sleep 0.05
  done
  PUBLISHED=$(metric zapd_fleet_steps_published_total)
  start_workers --set queue.free_concurrency=$((DRAIN_CONCURRENCY / 2))
  TS=$(date +%s.%N)
  # The workers join the group together (the mock's first join takes 3 s): from their first step.
  while [ $(( $(executed_by "${WPORTS[0]}") + $(executed_by "${WPORTS[1]}") )) -eq 0 ]; do
    sleep 0.02
    past 60 "$TS" && { echo "  (the workers took no step within 60 s)"; break; }
  done
  T0=$(date +%s.%N)
  CPU0=$(cpu_ticks "$ZPID" "${WPIDS[@]}")
  while [ "$(recorded)" -lt "$RUNS" ]; do
    sleep 0.05
    past 120 "$T0" && { echo "  (drain not done after 120 s: $(recorded) of $RUNS)"; break; }
  done
  T1=$(date +%s.%N)
  CPU1=$(cpu_ticks "$ZPID" "${WPIDS[@]}")
  DONE=$(recorded)
  SPLIT="$(executed_by "${WPORTS[0]}") + $(executed_by "${WPORTS[1]}")"
  LOAD=$(load)
  stop_fleet
  NGINX_RPS=$(nginx_rps "http://127.0.0.1:$NPORT/hook")
  python3 -c "
import sys
r, d, pub = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[10]); ts, t0, t1 = map(float, sys.argv[3:6]); n = float(sys.argv[6])
cpu = (int(sys.argv[8]) - int(sys.argv[7])) / int(sys.argv[9])
t = t1 - t0
print(f'  {d} of {r} backlogged steps ({pub} published before the workers started) recorded in {t:.1f} s from the '
      f'workers\' first step ({t0 - ts:.1f} s after their start: the group join): {d/t:.0f} actions/s; nginx {n:.0f} '
      f'requests/s; ratio {d/t/n:.3f}; CPU (primary + workers) {cpu * 1e6 / max(d, 1):.0f} us per action; '
      f'steps per worker {sys.argv[11]}')
" "$RUNS" "$DONE" "$TS" "$T0" "$T1" "$NGINX_RPS" "$CPU0" "$CPU1" "$(getconf CLK_TCK)" "$PUBLISHED" "$SPLIT"
  echo "  load: $LOAD"
fi

if [[ " $SECTIONS " == *" 3 "* ]]; then
  # One hop with nothing of zapd on it: the floor under 1b's latency (a step crosses one hop).
  for ROUND in $(seq "$ROUNDS"); do
    for W in $FETCH_WAITS; do
      echo "== 3. one Kafka hop on the mock, no zapd ($(props "$W")): $RATE messages/s for $SECS s (load $(load))"
      HOPS=$((${HOPS:-0} + 1))
      start_mock "hop.$HOPS"
      IFS=';' read -r -a HOP_PROPS <<<"$(props "$W")"
      "$HOP" "$BOOTSTRAP" "$RATE" "$SECS" "${HOP_PROPS[@]}" | sed 's/^/  /' || echo "  (not every message came back)"
      exec 7>&-
      kill -TERM "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true
    done
  done
fi
