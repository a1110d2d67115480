#!/usr/bin/env bash
# Memory of the crawl workers inside the running local stack: brings the
# stack up (state in a temp dir), seeds the 20 built-in seeds, and while
# the autoscaler has the most workers up samples each worker's RSS, PSS and
# anonymous memory from /proc/<pid>/smaps_rollup; then takes it down.
# RSS counts the binary's pages in full in every process; PSS shares them
# among the processes that map them. Prints a Markdown table.
# Usage: bench/stack_memory.sh [samples, default 10]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
SAMPLES=${1:-10}
ROOT=$(repo_root)
bench_workdir stackmem
build_crawlctl
BIN="$ROOT/bin/crawlctl"
export XDG_STATE_HOME="$WORK/state" CRAWLCTL_NAME=stackmem
trap '"$BIN" -q down --purge >/dev/null 2>&1 || true; bench_cleanup' EXIT
step "up, seed --count 20"
"$BIN" -q up --provider local --sim-time-factor 10 >/dev/null
"$BIN" -q seed --count 20 >/dev/null
best=""
for _ in $(seq "$SAMPLES"); do
  sleep 2
  row=$(for p in $(pgrep -f "^$BIN run worker"); do
    awk '/^Rss:/{r=$2} /^Pss:/{s=$2} /^Anonymous:/{a=$2} END{print r, s, a}' "/proc/$p/smaps_rollup" 2>/dev/null || true
  done | awk 'NF==3 {n++; r+=$1; s+=$2; a+=$3; if ($1>mr) mr=$1; if ($2>ms) ms=$2}
    END {if (n) printf "%d %.1f %.1f %.1f %.1f %.1f\n", n, r/n/1024, mr/1024, s/n/1024, ms/1024, a/n/1024}')
  [ -n "$row" ] || continue
  if [ -z "$best" ] || [ "${row%% *}" -ge "${best%% *}" ]; then best=$row; fi
done
[ -n "$best" ] || die "no worker was seen"
read -r n rmean rmax smean smax amean <<<"$best"
echo "| workers | RSS mean | RSS max | PSS mean | PSS max | anonymous mean |"
echo "|---|---|---|---|---|---|"
echo "| $n | $rmean MiB | $rmax MiB | $smean MiB | $smax MiB | $amean MiB |"
