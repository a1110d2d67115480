//go:build !crawlctl_runtime

package cluster

// The providers: local, and kind and kube, which deploy with the Helm SDK.
// They are left out of the runtime build (-tags crawlctl_runtime), the
// binary of the stack's images, which runs one component a process and
// never a provider: linking the Helm SDK and client-go costs every process
// about 4 MiB of its own memory at start and a working set that, in a
// worker pod's 64Mi cgroup, thrashes; linking the local provider (its
// Prometheus TSDB and PromQL, their cloud SDKs) costs every start, each
// hot restart's too, the CPU of their package init (docs/benchmarks.md).

import (
	"context"
	"log/slog"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newLocal(name string, o options) (Provider, error) {
	return local.New(name, local.WithPrinter(o.print))
}

// localPID is the pid of the local supervisor of the stack in dir, or
// stack.ErrNotUp.
func localPID(dir string) (int, error) {
	st, err := local.ReadState(dir)
	if err != nil {
		return 0, err
	}
	return st.PID, nil
}

// RunSupervisor is the local provider's supervisor process (crawlctl run
// supervisor, which up starts): it runs the stack in dir until ctx ends.
func RunSupervisor(ctx context.Context, dir string, readyTimeout time.Duration, log *slog.Logger) error {
	return local.RunSupervisor(ctx, dir, readyTimeout, log)
}

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
