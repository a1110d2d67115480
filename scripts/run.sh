#!/usr/bin/env bash
# The main job: build crawlctl, bring the crawl stack up on this machine
# (local provider: no Docker needed), crawl the 20 built-in seeds against
# the Open Library simulator through 3 egress proxies, and snapshot the
# run's metrics into raw_data/metrics/<scenario>/<run>/.
# Extra arguments go to `crawlctl up` (e.g. --proxies 1, --sim-time-factor 1).
# It pins --provider local, so that it runs the same on a machine with a
# Docker daemon (where `crawlctl up` alone picks kind); on kind:
#   eval "$(scripts/kind-offline.sh)" && scripts/run.sh --provider kind --node-cpu 2
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_go
build_crawlctl
cd "$(repo_root)"
export PATH="$PWD/bin:$PATH"
step "crawlctl up (the simulator's rate limits x10, so the run takes a minute, not ten)"
crawlctl up --provider local --sim-time-factor 10 "$@"
step "crawlctl seed --count 20"
crawlctl seed --count 20
step "crawlctl collect --until-drained"
dir=$(crawlctl collect --until-drained)
step "snapshot in $dir"
cat "$dir/summary.md"
echo
echo "picture: $dir/screenshots/overview.png"
echo "the stack is still up: crawlctl status, crawlctl logs worker, crawlctl down"
