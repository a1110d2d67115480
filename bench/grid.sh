#!/usr/bin/env bash
# Browser grid session setup (connect -> new page -> close) on loopback:
# straight to a Playwright browser server (launchServer, the same Chromium
# and flags), to a crawlctl browser worker (one relay), and through the
# grid (two relays: grid -> worker -> browser server), interleaved.
# The worker's lifetime limit is raised so no restart lands in the sample.
# Prints a Markdown table. Usage: bench/grid.sh [rounds, default 10] [sessions per round, default 20]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
need_node
apt_install redis-server chromium
ROUNDS=${1:-10}
PER=${2:-20}
ROOT=$(repo_root)
bench_workdir gridbench
wait_ready() { for _ in $(seq 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; die "$1 is not ready"; }

build_crawlctl
BIN="$ROOT/bin/crawlctl"
PW=${XDG_CACHE_HOME:-$HOME/.cache}/crawlctl/playwright-core@$("$BIN" run browser --help | sed -n 's/.*playwright-core@\([0-9.]*\).*/\1/p' | head -1)
export NODE_PATH="$PW/node_modules"

redis-server --port 16390 --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null & PIDS+=($!)
"$BIN" -q run browser --redis 127.0.0.1:16390 --listen 127.0.0.1:13100 --max-lifetime-sessions 1000000 >"$WORK/browser.log" 2>&1 & PIDS+=($!)
wait_ready http://127.0.0.1:13100/readyz
"$BIN" -q run grid --redis 127.0.0.1:16390 --listen 127.0.0.1:18090 >"$WORK/grid.log" 2>&1 & PIDS+=($!)
wait_ready http://127.0.0.1:18090/readyz
for _ in $(seq 100); do curl -fs http://127.0.0.1:18090/metrics/prometheus | grep -q 'crawl_grid_worker_available{worker=".*"} 1' && break; sleep 0.1; done

# A plain browser server with the same browser and flags, for "direct".
cat > "$WORK/server.cjs" <<'JS'
const { chromium } = require('playwright-core');
chromium.launchServer({ executablePath: '/usr/bin/chromium', headless: true, host: '127.0.0.1', port: 0,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-dev-shm-usage'] })
  .then((s) => console.log(s.wsEndpoint()));
JS
node "$WORK/server.cjs" > "$WORK/direct.txt" & PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/direct.txt" ] && break; sleep 0.1; done
DIRECT=$(cat "$WORK/direct.txt")

step "session setup: $ROUNDS rounds x $PER sessions per endpoint"
node "$ROOT/bench/grid_sessions.cjs" "$ROUNDS" "$PER" "direct=$DIRECT" "worker=ws://127.0.0.1:13100/" "grid=ws://127.0.0.1:18090/" > "$WORK/out.json"
python3 - "$WORK/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["direct"]
print("| path | sessions | setup p50 ms | setup p90 | setup p99 | setup p50 vs direct | connect p50 ms | connect p99 | connect p50 vs direct |")
print("|---|---|---|---|---|---|---|---|---|")
for k in ("direct", "worker", "grid"):
    v = r[k]
    print(f"| {k} | {v['n']} | {v['p50']} | {v['p90']} | {v['p99']} | {v['p50'] - d['p50']:+.2f} | {v['connectP50']} | {v['connectP99']} | {v['connectP50'] - d['connectP50']:+.2f} |")
PY
