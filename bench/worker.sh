#!/usr/bin/env bash
# Worker throughput and memory against the simulator (limits off): one
# `crawlctl run worker` pinned to CPU 1 with GOMAXPROCS=1; the Kafka-protocol
# broker, redis-server and the simulator pinned to CPU 0.
# Usage: bench/worker.sh [extra go test flags, e.g. -count 3]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
apt_install redis-server util-linux
cd "$(repo_root)"
BENCH_PIN=1 taskset -c 0 go test ./pkg/runtime/ -run '^$' -bench BenchmarkWorker -benchtime 3x "$@"
