//go:build !crawlctl_runtime

package cluster

// The providers that deploy with the Helm SDK (kind, kube). They are left
// out of the runtime build (-tags crawlctl_runtime), the binary of the
// stack's images: linking the Helm SDK and client-go costs every process
// about 4 MiB of its own memory at start and a working set that, in a
// worker pod's 64Mi cgroup, thrashes (docs/benchmarks.md).

import (
	"context"

	"github.com/crawlctl/crawlctl/pkg/budget"

	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newCluster(name string, o options) (Provider, error) {
	if o.provider == stack.Kind {
		return kind.New(name, kind.WithPrinter(o.print), kind.WithLogger(o.log), kind.WithNamespace(o.namespace)), nil
	}
	return kube.NewProvider(name, kube.WithKubeconfig(o.kubeconfig, o.context), kube.WithNamespace(o.namespace),
		kube.WithPrinter(o.print), kube.WithLogger(o.log)), nil
}

// fromRecord is the provider of a stack recorded in a cluster: a kind
// cluster's keeps the cluster on down (down --provider kind deletes it).
func fromRecord(r stack.Record, o options) (Provider, error) {
	if r.Provider == stack.Kind {
		return kind.FromRecord(r, kind.WithPrinter(o.print), kind.WithLogger(o.log)), nil
	}
	return kube.FromRecord(r, kube.WithPrinter(o.print), kube.WithLogger(o.log)), nil
}

func kindFits(ctx context.Context, plan *budget.Plan) (string, error) { return kind.Fits(ctx, plan) }
