#!/usr/bin/env bash
# The kind provider on this machine's Docker daemon, with the node image
# scripts/kind-offline.sh builds: RUNS times (default 3) `crawlctl up
# --provider kind --cluster-only` on no cluster (to node Ready and CoreDNS
# ready), the same up again (reuse), and `crawlctl down --provider kind`;
# then RUNS times the whole stack: `crawlctl up --provider kind` on no
# cluster to every workload Ready (KEDA and the stack's images from
# kind-offline.sh's exports), `crawlctl seed --count 20` and `crawlctl
# collect --until-drained` (the drain, and its ratio to the physical limit:
# the URLs crawled over 3 egress at the simulator's 3 req/s × 10), and its
# down. Prints the median (min–max) of each as a Markdown table.
# Usage: bench/kind.sh [runs, default 3]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
apt_install jq bc
RUNS=${1:-3}
ROOT=$(repo_root)
kind_env=$("$ROOT/scripts/kind-offline.sh") # not in eval, which would hide its failure
eval "$kind_env"
bench_workdir kindbench
build_crawlctl >/dev/null
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -tags crawlctl_runtime -o bin/crawlctl-runtime ./cmd/crawlctl) || die "runtime build failed"
export XDG_STATE_HOME="$WORK/state" CRAWLCTL_NAME=kind-bench
CC="$ROOT/bin/crawlctl"
"$CC" down --provider kind -q || true
secs() { local t0=$EPOCHREALTIME; "$@" >/dev/null; echo "$EPOCHREALTIME - $t0" | bc; }
declare -a UP REUSE DOWN
for i in $(seq 1 "$RUNS"); do
  UP+=("$(secs "$CC" up --provider kind --node-cpu 2 --cluster-only -q)")
  REUSE+=("$(secs "$CC" up --provider kind --node-cpu 2 --cluster-only -q)")
  DOWN+=("$(secs "$CC" down --provider kind -q)")
  step "run $i: up ${UP[-1]} s, again ${REUSE[-1]} s, down ${DOWN[-1]} s"
done
declare -a STACK STACKDOWN DRAIN RATIO
for i in $(seq 1 "$RUNS"); do
  STACK+=("$(secs "$CC" up --provider kind --node-cpu 2 --sim-time-factor 10 -q)")
  "$CC" seed --count 20 -q >/dev/null
  rm -rf "$WORK/raw"
  "$CC" collect --until-drained --out "$WORK/raw" -q >/dev/null
  run=$(find "$WORK/raw" -name run.json | head -1)
  DRAIN+=("$(jq -r .summary.drain_seconds "$run")")
  RATIO+=("$(jq -r '.summary.drain_seconds / (.run.counters.crawled / (3 * 3 * 10))' "$run")")
  STACKDOWN+=("$(secs "$CC" down --provider kind -q)")
  step "stack run $i: up ${STACK[-1]} s, drain ${DRAIN[-1]} s (${RATIO[-1]}× the limit), down ${STACKDOWN[-1]} s"
done
step_done
spread() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.1f s (%.1f–%.1f)", m, v[1], v[NR]}'; }
echo "| $RUNS runs | median (min–max) |"
echo "|---|---|"
echo "| up --provider kind --cluster-only, no cluster (to node Ready, CoreDNS ready) | $(spread "${UP[@]}") |"
echo "| the same up again (reuses the cluster) | $(spread "${REUSE[@]}") |"
echo "| down --provider kind | $(spread "${DOWN[@]}") |"
echo "| up --provider kind, no cluster, to every workload Ready (KEDA and the stack installed) | $(spread "${STACK[@]}") |"
echo "| seed --count 20, collect --until-drained: drain (3 egress, time factor 10) | $(spread "${DRAIN[@]}") |"
echo "| drain / physical limit (goal ≤ 1.3) | $(printf '%s\n' "${RATIO[@]}" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.2f× (%.2f–%.2f)", m, v[1], v[NR]}') |"
echo "| its down --provider kind | $(spread "${STACKDOWN[@]}") |"
