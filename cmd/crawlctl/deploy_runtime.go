//go:build crawlctl_runtime

package main

// The runtime build (-tags crawlctl_runtime) is the binary of the stack's
// images: it runs components and the local provider, and leaves out the
// Helm SDK and client-go that the kind and kube providers deploy with.

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/pflag"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
)

var errRuntimeBuild = errors.New("this crawlctl is the runtime build (-tags crawlctl_runtime), which runs the stack's components " +
	"but does not deploy it: use a crawlctl built without the tag (go install github.com/crawlctl/crawlctl/cmd/crawlctl)")

// addKEDAFlags adds nothing: the runtime build does not deploy.
func addKEDAFlags(*pflag.FlagSet, *kubeFlags) {}

func renderManifests(*app, string, *budget.Plan, kubeFlags) (string, error) {
	return "", errRuntimeBuild
}

func createKind(context.Context, *app, *kind.Provider, *budget.Plan, kubeFlags, time.Duration) error {
	return errRuntimeBuild
}

func sizeFromCluster(context.Context, *app, kubeFlags) error { return errRuntimeBuild }

func upKube(context.Context, *app, *budget.Plan, kubeFlags, time.Duration) error {
	return errRuntimeBuild
}

func (a *app) kubeRecord() (*cluster.KubeRecord, error) { return nil, nil }

func downKube(context.Context, *app, *cluster.KubeRecord, time.Duration) error {
	return errRuntimeBuild
}

func statusKube(context.Context, *app, *cluster.KubeRecord) error { return errRuntimeBuild }
