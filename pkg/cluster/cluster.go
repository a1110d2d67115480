// Package cluster brings the crawl stack up and down. A Provider is either
// local (child processes of a supervisor, the embedded default) or kind (a
// single-node Kind cluster); both are sized by the same budget.Plan and
// report the same endpoints, so seed, status and collect work on either.
package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
)

// Providers by name.
const (
	Auto  = "auto"
	Local = "local"
	Kind  = "kind"
	// Kube installs into an existing cluster from a kubeconfig; never
	// chosen by auto.
	Kube = "kube"
)

// Endpoints are the stack's addresses on this host.
type Endpoints struct {
	API        string `json:"api"`
	Prometheus string `json:"prometheus,omitempty"`
	Simulator  string `json:"simulator,omitempty"`
	Kafka      string `json:"kafka,omitempty"`
	Redis      string `json:"redis,omitempty"`
	Grid       string `json:"grid,omitempty"`
}

// KindInstalls says whether auto may pick kind: the kind provider's
// Docker steps have not run against a real daemon yet (none runs where it
// is developed), so auto picks local until they have.
const KindInstalls = false

// Choose resolves a --provider value and says why. auto means kind when a
// Docker daemon answers (and this build creates kind clusters), local
// otherwise.
func Choose(ctx context.Context, provider string) (string, string, error) {
	switch provider {
	case Local:
		return Local, "asked for with --provider local", nil
	case Kind:
		return Kind, "asked for with --provider kind", nil
	case Kube:
		return Kube, "asked for with --provider kube", nil
	case Auto, "":
		if err := dockerPing(ctx); err != nil {
			return Local, "no Docker daemon answers (" + err.Error() + ")", nil
		}
		if !KindInstalls {
			return Local, "a Docker daemon answers, but the kind provider is not yet verified against one (--provider kind to use it)", nil
		}
		return Kind, "a Docker daemon answers", nil
	default:
		return "", "", fmt.Errorf("provider %q is unknown: use auto, local, kind or kube", provider)
	}
}

// dockerPing checks that a Docker daemon answers where the docker CLI
// would look (DOCKER_HOST, else the default socket).
func dockerPing(ctx context.Context) error {
	d, err := kind.NewDocker()
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := d.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%s: %w", d.DaemonHost(), err)
	}
	return nil
}
