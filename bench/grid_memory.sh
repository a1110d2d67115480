#!/usr/bin/env bash
# Memory of the browser grid under load: `crawlctl up --grid-workers 1`,
# five Playwright sessions holding a page each, then the PSS of the browser
# worker's whole process tree (crawlctl, Node.js, Chromium) and of the grid
# proxy, from /proc/<pid>/smaps_rollup. Prints a Markdown table.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
need_node
apt_install chromium
ROOT=$(repo_root)
bench_workdir gridmem
build_crawlctl
BIN="$ROOT/bin/crawlctl"
export XDG_STATE_HOME="$WORK/state" CRAWLCTL_NAME=gridmem
trap '"$BIN" -q down --purge >/dev/null 2>&1 || true; bench_cleanup' EXIT
step "up --provider local --grid-workers 1"
"$BIN" -q up --provider local --grid-workers 1 >/dev/null
GRID=$("$BIN" status -o json | sed -n 's/.*"grid": *"\([^"]*\)".*/\1/p' | head -1)
PW=${XDG_CACHE_HOME:-$HOME/.cache}/crawlctl
export NODE_PATH=$(ls -d "$PW"/playwright-core@*/node_modules | head -1)
node "$ROOT/pkg/runtime/grid/testdata/client.cjs" \
  "{\"ws\":\"$GRID\",\"sessions\":5,\"concurrency\":5,\"url\":\"data:text/html,<title>x</title>\",\"holdMs\":6000}" >/dev/null &
PIDS+=($!)
sleep 3.5
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup"; }
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
B=$(pgrep -f "^$BIN run browser" | head -1)
G=$(pgrep -f "^$BIN run grid" | head -1)
total=0 n=0
for p in $(tree "$B"); do total=$((total + $(pss "$p" || echo 0))); n=$((n + 1)); done
echo "| process | processes | PSS |"
echo "|---|---|---|"
echo "| browser worker (crawlctl + Node.js + Chromium), 5 live pages | $n | $((total / 1024)) MiB |"
echo "| grid proxy | 1 | $(( $(pss "$G") / 1024 )) MiB (RSS $(awk '/^VmRSS/{print int($2/1024)}' "/proc/$G/status") MiB) |"
wait "${PIDS[-1]}" 2>/dev/null || true
