#!/usr/bin/env bash
# Builds the kube-apiserver the kind-provider tests install into, from the
# k8s.io/kubernetes module pinned in hack/kube-apiserver/go.mod, into
# ${XDG_CACHE_HOME:-~/.cache}/crawlctl/kube-apiserver. Quick when that
# exact version is there already (a stamp file says which it is).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_go
ROOT=$(repo_root)
MOD="$ROOT/hack/kube-apiserver"
VERSION=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$MOD/go.mod")
[ -n "$VERSION" ] || die "no k8s.io/kubernetes version in $MOD/go.mod"
OUT="${XDG_CACHE_HOME:-$HOME/.cache}/crawlctl"
BIN="$OUT/kube-apiserver"
if [ -x "$BIN" ] && [ "$(cat "$BIN.version" 2>/dev/null)" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$OUT"
step "building kube-apiserver $VERSION (one-time, a few minutes)"
(cd "$MOD" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver) \
  || die "building kube-apiserver $VERSION failed"
mv "$BIN.tmp" "$BIN"
echo "$VERSION" > "$BIN.version"
echo "$BIN"
