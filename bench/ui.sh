#!/usr/bin/env bash
# The web UI as served by zapd: static throughput of the main JavaScript asset (gzip) against
# nginx serving the same precompressed bytes on the same box, and cold page loads of /signin
# in headless Chromium (no cache, fresh profile each time).
#
#   bench/ui.sh [seconds]        (default 10; needs a built ./build/zapd with the UI and
#                                 web/node_modules, i.e. after `make test`)
#
# Environment: ZAPD (binary, default ./build/zapd), CONNECTIONS (default 64), LOADS (default 20).
# Installs wrk and nginx-light from Debian's archive when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
ZAPD="${ZAPD:-./build/zapd}"
CONNECTIONS="${CONNECTIONS:-64}"
LOADS="${LOADS:-20}"

. bench/common.sh
bench_need wrk nginx
[ -x "$ZAPD" ] || { echo "bench: $ZAPD not found; build first (make build)" >&2; exit 1; }
[ -d web/node_modules/playwright-core ] || { echo "bench: web/node_modules missing; run make web-deps" >&2; exit 1; }

bench_scratch zapd-bench-ui
run_wrk() {  # url -> "requests/s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H 'Accept-Encoding: gzip' "$1" | awk '/^Requests\/sec/ {print $2}'
}

JS=$(cd web/dist && ls assets/*.js | head -1)
gzip -9 -n -c "web/dist/$JS" > "$WORK/asset.js.gz"

ZPORT=$(free_port)
"$ZAPD" serve --data-dir "$WORK/data" --listen "127.0.0.1:$ZPORT" --set log.level=warn \
  --set worker.enabled=off --set auth.hash_memlimit_kib=8192 --set auth.hash_opslimit=1 >"$WORK/zapd.log" 2>&1 &
ZPID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ZPORT/healthz" >/dev/null && break; sleep 0.1; done
ZURL="http://127.0.0.1:$ZPORT/$JS"
[ "$(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$ZURL")" = "$(stat -c %s "$WORK/asset.js.gz")" ] ||
  { echo "bench: zapd did not serve the gzip twin of $JS" >&2; exit 1; }

start_nginx 2 "location = /asset.js {
      default_type text/javascript;
      add_header Content-Encoding gzip;
      add_header Cache-Control \"public, max-age=31536000, immutable\";
      alias $WORK/asset.js.gz;
    }"

echo "asset: $JS, $(stat -c %s "web/dist/$JS") bytes, $(stat -c %s "$WORK/asset.js.gz") gzipped"
Z=$(run_wrk "$ZURL")
N=$(run_wrk "http://127.0.0.1:$NPORT/asset.js")
python3 -c "import sys; z,n=float(sys.argv[1]),float(sys.argv[2]); print(f'zapd  {z:10.0f} req/s\nnginx {n:10.0f} req/s\nratio {z/n:10.2f}')" "$Z" "$N"
echo "zapd peak RSS: $(awk '/VmHWM/ {print $2}' /proc/$ZPID/status) KiB"

# Cold loads: a new browser context each time (empty cache), until the sign-in form shows.
cat > "$WORK/load.mjs" <<'JS'
import { createRequire } from 'node:module';
const require = createRequire(process.cwd() + '/web/package.json');
const { chromium } = require('playwright-core');
const [url, n] = [process.argv[2], Number(process.argv[3])];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
         '--disable-component-update', '--disable-sync'] });
const times = []; let bytes = 0;
for (let i = 0; i < n; i++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  let got = 0;
  page.on('response', async (r) => { const h = await r.allHeaders(); got += Number(h['content-length'] || 0); });
  const t0 = performance.now();
  await page.goto(url);
  await page.getByLabel('Email').waitFor();
  times.push(performance.now() - t0);
  bytes = got;
  await ctx.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(`cold load of /signin to a usable form: median ${times[Math.floor(n / 2)].toFixed(0)} ms, ` +
            `max ${times[n - 1].toFixed(0)} ms over ${n} loads; ${bytes} bytes on the wire`);
JS
node "$WORK/load.mjs" "http://127.0.0.1:$ZPORT/signin" "$LOADS"
