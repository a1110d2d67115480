package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/release"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// KEDA from its official chart (stack.KEDARepo at stack.KEDAVersion).
const (
	KEDANamespace = "keda"
	kedaChart     = "keda"
	kedaRelease   = "keda"
)

// KEDAOptions say where KEDA's chart comes from.
type KEDAOptions struct {
	// RepoURL and Version of the chart (stack.KEDARepo and
	// stack.KEDAVersion when empty). A directory holding a repository
	// (index.yaml and charts, as hack/kedachart writes) is served on
	// loopback for the install, and installed over Helm's repository
	// protocol like any other.
	RepoURL, Version string
	// CacheDir keeps downloaded charts and repository indexes.
	CacheDir string
}

// KEDAValues are the KEDA chart's values for plan: its three Deployments
// sized as the budget counts them.
func KEDAValues(plan *budget.Plan) (map[string]any, error) {
	res := map[string]any{}
	for key, name := range map[string]string{
		"operator":     budget.KEDAOperator,
		"metricServer": budget.KEDAMetricsAPIServer,
		"webhooks":     budget.KEDAAdmissionWebhooks,
	} {
		c, ok := plan.Component(name)
		if !ok {
			return nil, fmt.Errorf("the budget has no %s to size KEDA's %s with", name, key)
		}
		res[key] = map[string]any{
			"requests": map[string]any{"memory": fmt.Sprintf("%dMi", c.RequestMemoryMi), "cpu": fmt.Sprintf("%dm", c.RequestCPUm)},
			"limits":   map[string]any{"memory": fmt.Sprintf("%dMi", c.LimitMemoryMi), "cpu": fmt.Sprintf("%dm", c.LimitCPUm)},
		}
	}
	return map[string]any{"resources": res}, nil
}

// ApplyKEDA installs or upgrades KEDA from its chart repository into the
// Deployer's namespace (KEDANamespace, by convention), sized from plan.
func (d *Deployer) ApplyKEDA(ctx context.Context, plan *budget.Plan, o KEDAOptions, ao ApplyOptions) (*release.Release, error) {
	if o.RepoURL == "" {
		o.RepoURL = stack.KEDARepo
	}
	if o.Version == "" {
		o.Version = stack.KEDAVersion
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding a cache directory for Helm: %w", err)
		}
		o.CacheDir = filepath.Join(dir, "crawlctl", "helm")
	}
	if local, err := os.Stat(o.RepoURL); err == nil && local.IsDir() {
		url, stop, err := serveRepo(o.RepoURL)
		if err != nil {
			return nil, err
		}
		defer stop()
		o.RepoURL = url
	}
	settings := cli.New()
	settings.RepositoryCache = filepath.Join(o.CacheDir, "repository")
	settings.RepositoryConfig = filepath.Join(o.CacheDir, "repositories.yaml")
	settings.RegistryConfig = filepath.Join(o.CacheDir, "registry.json")
	var cpo action.ChartPathOptions
	cpo.RepoURL, cpo.Version = o.RepoURL, o.Version
	path, err := cpo.LocateChart(kedaChart, settings)
	if err != nil {
		return nil, fmt.Errorf("fetching KEDA's chart %s from %s: %w", o.Version, o.RepoURL, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("loading KEDA's chart %s: %w", path, err)
	}
	vals, err := KEDAValues(plan)
	if err != nil {
		return nil, err
	}
	return d.apply(ctx, kedaRelease, ch, vals, ao)
}

// serveRepo serves a chart repository directory on a loopback port until
// stop is called.
func serveRepo(dir string) (url string, stop func(), err error) {
	if _, err := os.Stat(filepath.Join(dir, "index.yaml")); err != nil {
		return "", nil, fmt.Errorf("--keda-repo %s is a directory without a chart repository's index.yaml: %w", dir, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
