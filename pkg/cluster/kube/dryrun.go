package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// DryRun writes the stack's rendered chart (a client-only Helm dry run)
// into o.Dir/manifests.yaml, touching no cluster.
func (p *Provider) DryRun(_ context.Context, plan *budget.Plan, uo stack.UpOptions, o stack.DryRunOptions) ([]string, error) {
	user, err := UserValues(&uo)
	if err != nil {
		return nil, err
	}
	m, err := deploy.Render(deploy.Options{Plan: plan, Release: p.release, Namespace: p.namespace,
		Image: uo.Image, BrowserImage: uo.BrowserImage, Target: uo.Target, User: user,
		SimTimeFactor: uo.SimTimeFactor, ProxyAssignment: uo.ProxyAssignment})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	path := filepath.Join(o.Dir, "manifests.yaml")
	return []string{path}, os.WriteFile(path, []byte(m), 0o644)
}
