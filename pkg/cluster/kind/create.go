package kind

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindlog "sigs.k8s.io/kind/pkg/log"
)

// Kind is the part of kind's cluster.Provider (sigs.k8s.io/kind/pkg/cluster)
// crawlctl drives.
type Kind interface {
	List() ([]string, error)
	Create(name string, options ...kindcluster.CreateOption) error
	KubeConfig(name string, internal bool) (string, error)
	Delete(name, explicitKubeconfigPath string) error
	ListNodes(name string) ([]nodes.Node, error)
}

// NewKind is kind's provider on Docker, logging to log.
func NewKind(log *slog.Logger) Kind {
	return kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindLogger{log}))
}

// Ensure creates the cluster of cfg unless kind lists it already (kind's
// create is not idempotent), waiting up to wait for its control plane; it
// reports whether it created the cluster.
func Ensure(k Kind, cfg *v1alpha4.Cluster, wait time.Duration) (bool, error) {
	names, err := k.List()
	if err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	}
	if slices.Contains(names, cfg.Name) {
		return false, nil
	}
	err = k.Create(cfg.Name, kindcluster.CreateWithV1Alpha4Config(cfg), kindcluster.CreateWithWaitForReady(wait),
		kindcluster.CreateWithDisplayUsage(false), kindcluster.CreateWithDisplaySalutation(false))
	if err != nil {
		return false, fmt.Errorf("creating kind cluster %s: %w (kind's own log: crawlctl -v up --provider kind)", cfg.Name, err)
	}
	return true, nil
}

// NodeContainer is the Docker container of a kind cluster's one node.
func NodeContainer(cluster string) string { return cluster + "-control-plane" }

// ContainerUpdater is the part of the Docker API that caps the node (the
// moby client has it).
type ContainerUpdater interface {
	ContainerUpdate(ctx context.Context, id string, o client.ContainerUpdateOptions) (client.ContainerUpdateResult, error)
}

// CapNode limits the cluster's node container to memoryMi, swap included
// (memory+swap = memory), so the budget holds for everything in the node,
// kind's control plane too.
func CapNode(ctx context.Context, d ContainerUpdater, cluster string, memoryMi int64) error {
	b := memoryMi << 20
	_, err := d.ContainerUpdate(ctx, NodeContainer(cluster), client.ContainerUpdateOptions{
		Resources: &container.Resources{Memory: b, MemorySwap: b},
	})
	if err != nil {
		return fmt.Errorf("limiting node container %s to %dMi: %w", NodeContainer(cluster), memoryMi, err)
	}
	return nil
}

// kindLogger writes kind's messages to a slog.Logger: warnings and errors
// as such, progress at debug level.
type kindLogger struct{ log *slog.Logger }

func (l kindLogger) Warn(m string)                      { l.log.Warn(m) }
func (l kindLogger) Warnf(f string, a ...any)           { l.log.Warn(fmt.Sprintf(f, a...)) }
func (l kindLogger) Error(m string)                     { l.log.Error(m) }
func (l kindLogger) Errorf(f string, a ...any)          { l.log.Error(fmt.Sprintf(f, a...)) }
func (l kindLogger) V(kindlog.Level) kindlog.InfoLogger { return kindInfo(l) }

type kindInfo kindLogger

func (l kindInfo) Info(m string)            { l.log.Debug(m) }
func (l kindInfo) Infof(f string, a ...any) { l.log.Debug(fmt.Sprintf(f, a...)) }
func (l kindInfo) Enabled() bool            { return l.log.Enabled(context.Background(), slog.LevelDebug) }
