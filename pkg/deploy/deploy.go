package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Deployer installs, upgrades and uninstalls the stack's release in one
// cluster and namespace, through the Helm SDK.
type Deployer struct {
	cfg       *action.Configuration
	namespace string
	log       *slog.Logger
}

// NewDeployer talks to the cluster of kubeconfig (context: "" for its
// current one), keeping Helm's release records in namespace.
func NewDeployer(kubeconfig, kubeContext, namespace string, log *slog.Logger) (*Deployer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Context, flags.Namespace = &kubeconfig, &kubeContext, &namespace
	cfg := new(action.Configuration)
	debug := func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...)) }
	if err := cfg.Init(flags, namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("connecting Helm to the cluster of %s: %w", kubeconfig, err)
	}
	return &Deployer{cfg: cfg, namespace: namespace, log: log}, nil
}

// ApplyOptions bound an install or upgrade.
type ApplyOptions struct {
	Timeout time.Duration
	// Wait waits for every workload to be ready.
	Wait bool
}

// Apply installs the release o.Release, or upgrades it when it exists
// (Helm's history decides), with the chart rendered from o.
func (d *Deployer) Apply(ctx context.Context, o Options, ao ApplyOptions) (*release.Release, error) {
	ch, err := LoadChart(ChartName)
	if err != nil {
		return nil, err
	}
	vals, err := Values(o)
	if err != nil {
		return nil, err
	}
	return d.apply(ctx, o.Release, ch, vals, ao)
}

// apply installs release from ch with vals, or upgrades it when Helm's
// history has it.
func (d *Deployer) apply(ctx context.Context, name string, ch *chart.Chart, vals map[string]any, ao ApplyOptions) (*release.Release, error) {
	if ao.Timeout <= 0 {
		ao.Timeout = 5 * time.Minute
	}
	history := action.NewHistory(d.cfg)
	history.Max = 1
	_, err := history.Run(name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		install := action.NewInstall(d.cfg)
		install.ReleaseName, install.Namespace, install.CreateNamespace = name, d.namespace, true
		install.Timeout, install.Wait = ao.Timeout, ao.Wait
		rel, err := install.RunWithContext(ctx, ch, vals)
		if err != nil {
			return nil, fmt.Errorf("installing release %s: %w", name, err)
		}
		return rel, nil
	case err != nil:
		return nil, fmt.Errorf("reading the history of release %s: %w", name, err)
	}
	upgrade := action.NewUpgrade(d.cfg)
	upgrade.Namespace, upgrade.Timeout, upgrade.Wait = d.namespace, ao.Timeout, ao.Wait
	upgrade.MaxHistory = 5
	rel, err := upgrade.RunWithContext(ctx, name, ch, vals)
	if err != nil {
		return nil, fmt.Errorf("upgrading release %s: %w", name, err)
	}
	return rel, nil
}

// ErrNoRelease: the release is not installed.
var ErrNoRelease = errors.New("no such release")

// Status is the release's latest revision.
func (d *Deployer) Status(name string) (*release.Release, error) {
	rel, err := action.NewStatus(d.cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("release %s: %w", name, ErrNoRelease)
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %s: %w", name, err)
	}
	return rel, nil
}

// Uninstall removes the release and everything it created; a release that
// is not there is not an error.
func (d *Deployer) Uninstall(name string, timeout time.Duration) error {
	u := action.NewUninstall(d.cfg)
	u.Timeout, u.Wait = timeout, true
	if _, err := u.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstalling release %s: %w", name, err)
	}
	return nil
}
