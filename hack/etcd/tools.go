//go:build tools

// Package tools pins etcd, the kind node image's etcd image, for `go build`
// (scripts/kind-offline.sh).
package tools

import _ "go.etcd.io/etcd/server/v3"
