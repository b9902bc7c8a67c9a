# Shared by the bench/ scripts (sourced): tools from Debian's archive, free ports, nginx as
# the reference server. Expects WORK (a scratch dir) to be set before start_nginx.

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
