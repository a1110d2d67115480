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
# built once from the pinned k8s.io/kubernetes module. (Each script gets a
# step of its own here, so that its lines time all of it.)
step "kube-apiserver (scripts/kube-apiserver.sh)"
"$(dirname "$0")/kube-apiserver.sh" >/dev/null
# The kind provider's end-to-end test creates a real kind cluster: a Docker
# daemon (started when none answers) and a node image built here, both by
# kind-offline.sh (cached: seconds when warm, about 35 minutes cold).
# (Assigned first: `eval "$(...)"` alone would hide its failure, and the
# kind tests would skip instead of failing.)
step "Docker and the kind node image (scripts/kind-offline.sh)"
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

# -race instruments the test process. It stays on every package whose
# tests run our concurrent code in-process: the runtimes, hot restart, the
# local stack's supervisor, the metrics store. The packages that link the
# Helm SDK (the kind and kube providers, deploy, the CLI, the experiment
# runner) test by driving real kube-apiservers, kind clusters and crawlctl
# binaries; under -race a cold machine would compile the Helm SDK and the
# Docker client a second time, instrumented, for test processes that mostly
# wait on those. They run without it, built as vet built them, so they reuse
# its compiled packages. (client-go is still race-compiled: the local
# provider and the metrics store link it.)
helm_pkgs=$(helm_packages)
[ -n "$helm_pkgs" ] || die "go list found no package that links the Helm SDK"
race_pkgs=$(go list ./... | grep -vxF "$helm_pkgs")

step "go test -race (all but the packages that link Helm)"
go test -race -count=1 -timeout 30m $race_pkgs
step "go test (no -race): $(echo $helm_pkgs | sed 's,github.com/crawlctl/crawlctl/,,g')"
CGO_ENABLED=0 go test -trimpath -count=1 -timeout 30m $helm_pkgs
step_done
printf '    %ds in all\n' "$SECONDS" >&2
