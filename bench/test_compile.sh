#!/usr/bin/env bash
# What -race costs the test suite's compile on a cold machine: in a fresh
# build cache, go vet (as test.sh runs it), then the -race test binaries of
# every package but those that link the Helm SDK, then those eight packages'
# test binaries two ways from copies of the same cache: under -race, and
# with vet's flags (what test.sh does). Compiles and links only (-run '^$').
# Usage: bench/test_compile.sh   (several minutes; uses a temp GOCACHE)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
cd "$(repo_root)"
bench_workdir testcompile
helm_pkgs=$(helm_packages)
race_pkgs=$(go list ./... | grep -vxF "$helm_pkgs")
export GOCACHE=$WORK/race
t=$SECONDS; CGO_ENABLED=0 go vet -trimpath ./...
echo "go vet, cold cache: $((SECONDS - t)) s"
t=$SECONDS; go test -race -count=1 -run '^$' $race_pkgs >/dev/null
echo "-race test binaries of the $(echo $race_pkgs | wc -w) other packages: $((SECONDS - t)) s"
cp -a "$WORK/race" "$WORK/norace"
t=$SECONDS; go test -race -count=1 -run '^$' $helm_pkgs >/dev/null
echo "the $(echo $helm_pkgs | wc -w) Helm-linking packages under -race: $((SECONDS - t)) s"
export GOCACHE=$WORK/norace
t=$SECONDS; CGO_ENABLED=0 go test -trimpath -count=1 -run '^$' $helm_pkgs >/dev/null
echo "the same without -race (vet's flags): $((SECONDS - t)) s"
