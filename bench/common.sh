# Shared by the bench/ scripts (sourced): tools from Debian's archive, free ports, nginx as
# the reference server, a zapd under test with a user and webhook zaps (e2e.sh, kafka.sh).
# Expects WORK (a scratch dir) to be set before start_nginx.

# Installs the Debian packages behind the given commands when missing (wrk, nginx, sqlite3).
bench_need() {
  local need=() tool
  for tool in "$@"; do
    case "$tool" in
      nginx) [ -x /usr/sbin/nginx ] || need+=(nginx-light) ;;
      *) command -v "$tool" >/dev/null || need+=("$tool") ;;
    esac
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nginx WORKERS 'server-block body' -> NPORT, NPID; waits until it answers on /.
# The block is placed inside `server { listen 127.0.0.1:$NPORT; ... }`.
start_nginx() {
  NPORT=$(free_port)
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes $1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NPORT;
    $2
  }
}
CONF
  /usr/sbin/nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
  NPID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 0.1; done
}

# bench_scratch NAME: WORK = a fresh /tmp/NAME.XXXXXX, removed on exit together with the zapd
# (ZPID) and nginx (NPID) the script started, if any.
bench_scratch() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  ZPID=""; NPID=""
  trap bench_cleanup EXIT
}
bench_cleanup() {
  [ -n "$ZPID" ] && kill "$ZPID" 2>/dev/null && wait "$ZPID" 2>/dev/null || true
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null || true
  rm -rf "$WORK"
}

# --- A zapd under test (bench/e2e.sh, bench/kafka.sh). Expect ZAPD (the binary), WORK and a
# PIDS array (killed by the caller's cleanup). ZAPD_ENV: optional array of NAME=value for the
# process (e.g. the Kafka backend's ZAPD_KAFKA_* settings).

# start_zapd NAME [--set k=v ...] -> ZPORT, ZPID, API, TOKEN: `zapd serve` on a fresh data dir
# WORK/NAME, a user signed up and signed in.
start_zapd() {
  local name=$1; shift
  ZPORT=$(free_port)
  env ${ZAPD_ENV[@]+"${ZAPD_ENV[@]}"} "$ZAPD" serve --data-dir "$WORK/$name" --listen "127.0.0.1:$ZPORT" --set log.level=warn \
    --set auth.hash_memlimit_kib=8192 --set auth.hash_opslimit=1 --set hooks.free_zap_rate=0 \
    --set hooks.free_user_rate=0 --set actions.http.allow=127.0.0.1 "$@" >"$WORK/$name.log" 2>&1 &
  ZPID=$!; PIDS+=("$ZPID")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ZPORT/healthz" >/dev/null && break; sleep 0.1; done
  API="http://127.0.0.1:$ZPORT/api/v1"
  curl -sf -XPOST "$API/user/signup" -d '{"username":"bench@example.com","password":"bench-password","name":"B"}' >/dev/null
  TOKEN=$(curl -sf -XPOST "$API/user/signin" -d '{"username":"bench@example.com","password":"bench-password"}' |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
}
make_zap() {  # action url -> HOOK url (a webhook zap with one HTTP POST action)
  local zap
  zap=$(curl -sf -XPOST "$API/zap" -H "Authorization: Bearer $TOKEN" -d "{\"availableTriggerId\":\"webhook\",\"triggerMetadata\":{},\"actions\":[{\"availableActionId\":\"http\",\"actionMetadata\":{\"url\":\"$1\",\"method\":\"POST\",\"body\":\"{\\\"email\\\":\\\"{{comment.email}}\\\"}\"}}]}")
  HOOK="http://127.0.0.1:$ZPORT/hooks/$(python3 -c 'import sys,json; print(json.loads(sys.argv[1])["webhookUrl"].split("/hooks/",1)[1])' "$zap")"
}
metric_at() { curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }  # PORT NAME
metric() { metric_at "$ZPORT" "$1"; }
stop_zapd() { kill -TERM "$ZPID"; wait "$ZPID" || true; }
# writer_summary PORT: the group commit (write requests per transaction) and, with a worker,
# how many jobs went through a claim (the rest were handed to a free slot at their commit) and
# how many claim transactions the workers ran for them.
writer_summary() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^zapd_store_commits / {c=$2} /^zapd_store_write_requests / {r=$2}
    /^zapd_queue_claimed_total/ {cl+=$2} /^zapd_queue_handed_total/ {ho+=$2} /^zapd_queue_claims_total/ {ct+=$2} /^zapd_worker_steps_total/ {st+=$2}
    END {if (c > 0) printf "  writer: %d commits, %.1f write requests per commit", c, r / c;
         if (st > 0) printf "; %d step attempts: %d handed to a free slot, %d claimed (%d claim transactions)", st, ho, cl - ho, ct; print ""}'
}

# WORK/post.lua: wrk POSTs the webhook body e2e_tool.py sends.
write_post_lua() {
  cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event":"e2e","comment":{"email":"ada@example.com"}}'
LUA
}
# nginx_rps URL: what nginx answers wrk POSTing that body over the drain's connections.
nginx_rps() { wrk -t1 -c32 -d5s -s "$WORK/post.lua" "$1" | awk '/^Requests\/sec/ {print $2}'; }
