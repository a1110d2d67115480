// Package cluster brings the crawl stack up and down. A Provider is either
// local (child processes of a supervisor, the embedded default) or kind (a
// single-node Kind cluster); both are sized by the same budget.Plan and
// report the same endpoints, so seed, status and collect work on either.
package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Providers by name.
const (
	Auto  = "auto"
	Local = "local"
	Kind  = "kind"
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

// Choose resolves a --provider value and says why. auto means kind when a
// Docker daemon answers, local otherwise.
func Choose(ctx context.Context, provider string) (string, string, error) {
	switch provider {
	case Local:
		return Local, "asked for with --provider local", nil
	case Kind:
		return Kind, "asked for with --provider kind", nil
	case Auto, "":
		if err := DockerPing(ctx); err != nil {
			return Local, "no Docker daemon answers (" + err.Error() + ")", nil
		}
		return Kind, "a Docker daemon answers", nil
	default:
		return "", "", fmt.Errorf("provider %q is unknown: use auto, local or kind", provider)
	}
}

// DockerPing checks that a Docker daemon answers on DOCKER_HOST's unix
// socket (default /var/run/docker.sock).
func DockerPing(ctx context.Context) error {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); len(h) > len("unix://") && h[:7] == "unix://" {
		sock = h[7:]
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", sock, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", sock, resp.StatusCode)
	}
	return nil
}
