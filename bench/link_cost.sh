#!/usr/bin/env bash
# What linking a package into crawlctl costs every crawlctl process: builds
# crawlctl as released and again with a blank import of PKG added (a
# temporary file, removed at exit), then reports binary size, `crawlctl
# version` peak RSS (3 runs) and the anonymous/file split of an idle
# `crawlctl run olsim`. Usage: bench/link_cost.sh PKG
# (PKG: a dependency you consider importing; both builds are the full one,
# which already links the Helm SDK).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
[ $# -eq 1 ] || die "usage: bench/link_cost.sh PKG"
apt_install time
ROOT=$(repo_root)
bench_workdir linkcost
EXTRA="$ROOT/cmd/crawlctl/zz_link_cost.go"
trap 'rm -f "$EXTRA"; bench_cleanup' EXIT
build() { (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$1" ./cmd/crawlctl); }
measure() {
  local bin=$1 name=$2 peaks="" status
  for _ in 1 2 3; do peaks+="$(/usr/bin/time -f %M "$bin" version 2>&1 >/dev/null | tail -1) "; done
  "$bin" -q run olsim --listen 127.0.0.1:0 & local pid=$!
  sleep 1.5
  status=$(awk '/^(RssAnon|RssFile):/{printf "%s %d MiB  ", $1, $2/1024}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '| %s | %d MB | %s KiB | %s |\n' "$name" $(( $(stat -c %s "$bin") / 1000000 )) "$peaks" "$status"
}
step "building crawlctl, and crawlctl + $1"
build "$WORK/plain"
printf 'package main\n\nimport _ "%s"\n' "$1" > "$EXTRA"
build "$WORK/linked"
rm -f "$EXTRA"
echo "| build | size | \`crawlctl version\` peak RSS (3 runs) | idle \`run olsim\` |"
echo "|---|---|---|---|"
measure "$WORK/plain" "crawlctl"
measure "$WORK/linked" "crawlctl + $1"
