#!/usr/bin/env bash
# zapd's footprint (issue 16): the stripped binary's size, idle RSS, and start-to-ready (the
# first 200 from /readyz after exec) on an existing data dir and on a fresh one, each printed
# with its target.
#
#   bench/footprint.sh [runs]        (default 20 starts per case; needs a built ./build/zapd)
#
# Environment: ZAPD (binary, default ./build/zapd). Idle RSS: VmRSS 3 s after ready with no
# requests, default config (server.threads = cores, store.readers = 4). Start-to-ready is
# polled every 0.5 ms over 127.0.0.1 from a Python client, so it includes exec and the
# dynamic loader; a fresh data dir also creates the keys and applies every migration.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-20}"
ZAPD="${ZAPD:-./build/zapd}"
[ -x "$ZAPD" ] || { echo "footprint: $ZAPD not found; build first (make build)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/zapd-footprint-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

strip -o "$WORK/zapd.stripped" "$ZAPD"
echo "footprint: $ZAPD ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)), $RUNS starts per case" >&2
python3 - "$ZAPD" "$WORK" "$RUNS" "$(stat -c %s "$WORK/zapd.stripped")" <<'PY'
import http.client, os, socket, statistics, subprocess, sys, time

zapd, work, runs, stripped = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
FAST = ["--set", "auth.hash_memlimit_kib=8192"]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def ready(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/readyz"); ok = c.getresponse().status == 200; c.close(); return ok
    except OSError:
        return False

def start(data_dir):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([zapd, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir] + FAST + ["serve"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready(port):
        if p.poll() is not None: sys.exit(f"footprint: zapd exited with {p.returncode}")
        if time.perf_counter() - t0 > 20: sys.exit("footprint: not ready within 20 s")
        time.sleep(0.0005)
    return p, (time.perf_counter() - t0) * 1000

def stop(p):
    p.terminate(); p.wait()

def status_kib(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "Threads"): out[k] = int(v.split()[0])
    return out

existing = os.path.join(work, "existing")
p, _ = start(existing)                       # creates it
time.sleep(3)
st = status_kib(p.pid)
rss = st["VmRSS"] / 1024
stop(p)
warm = []
for _ in range(runs):
    p, ms = start(existing); warm.append(ms); stop(p)
fresh = []
for i in range(runs):
    p, ms = start(os.path.join(work, f"fresh{i}")); fresh.append(ms); stop(p)

def verdict(ok): return "met" if ok else "NOT met"
print(f"stripped binary       {stripped / 1e6:.2f} MB")
print(f"idle RSS              {rss:.1f} MiB (anonymous {st['RssAnon'] / 1024:.1f}, file-backed {st['RssFile'] / 1024:.1f}; "
      f"{st['Threads']} threads)      target < 12 MB: {verdict(rss * 1.048576 < 12)}")
print(f"start-to-ready        median {statistics.median(warm):.1f} ms (min {min(warm):.1f}, max {max(warm):.1f}) on an existing data dir, "
      f"{runs} starts      target < 30 ms: {verdict(statistics.median(warm) < 30)}")
print(f"start-to-ready fresh  median {statistics.median(fresh):.1f} ms (min {min(fresh):.1f}, max {max(fresh):.1f}), {runs} starts")
PY
