#!/usr/bin/env bash
# Every test: formatting, vet, the Go test suite with the race detector, and
# the release config check. Installs what the tests need first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_go
cd "$(repo_root)"

# Real servers the tests start: redis-server, PostgreSQL (run as the
# postgres user), and for the browser grid Chromium driven by Node.js and
# playwright-core (installed by the tests into the user cache dir, pinned);
# etcd for the kube-apiserver.
step "the tools the tests need (installed when missing)"
apt_install redis-server postgresql chromium etcd-server
need_node
# The kind provider's deploy test installs into a real kube-apiserver,
# built once from the pinned k8s.io/kubernetes module.
"$(dirname "$0")/kube-apiserver.sh" >/dev/null
# The kind provider's end-to-end test creates a real kind cluster: a Docker
# daemon (started when none answers) and a node image built here, both by
# kind-offline.sh (cached: seconds when warm, about 25 minutes cold).
# (Assigned first: `eval "$(...)"` alone would hide its failure, and the
# kind tests would skip instead of failing.)
kind_env=$("$(dirname "$0")/kind-offline.sh")
eval "$kind_env"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './vendor/*'))
[ -z "$unformatted" ] || die "gofmt would change: $unformatted (run gofmt -w)"

# vet and the tools are built as the release and the tests' binaries are
# (CGO_ENABLED=0, -trimpath), so a cold machine compiles each package once
# for all of them, not once per set of flags (then once more under -race).
step "go vet"
CGO_ENABLED=0 go vet -trimpath ./...

step "static build (CGO_ENABLED=0)"
build_crawlctl

step "goreleaser check"
goreleaser=$(go_tool goreleaser github.com/goreleaser/goreleaser/v2@v2.16.0)
"$goreleaser" check -q .goreleaser.yaml

step "go test -race"
go test -race -count=1 -timeout 30m ./...
step_done
printf '    %ds in all\n' "$SECONDS" >&2
