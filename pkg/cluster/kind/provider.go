package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// Provider is the kind provider of one named stack.
type Provider struct {
	Name  string
	Ports Ports
	// Progress gets one line per step (nil: quiet).
	Progress func(format string, args ...any)
}

func (p *Provider) step(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(format, args...)
	}
}

// ErrNotBuilt: this build checks Docker and writes the cluster's
// configuration, but does not create the cluster yet.
var ErrNotBuilt = errors.New("creating the kind cluster and installing the charts is not in this build yet: " +
	"run the stack with --provider local, or see what kind would get with `crawlctl up --provider kind --dry-run -o DIR`")

// Up checks the Docker daemon against plan and sizes the node's
// configuration to what it reported.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan) error {
	d, err := NewDocker()
	if err != nil {
		return fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	p.step("preflight: Docker at %s", d.DaemonHost())
	f, err := Preflight(ctx, d, plan, exec.LookPath)
	if err != nil {
		return err
	}
	p.step("preflight: Docker has %dMi and %d CPUs (cgroup v%s): the %dMi budget fits", f.MemoryMi, f.CPUs, f.CgroupVersion, plan.NodeMemoryMi)
	if _, err := Config(Options{Name: p.Name, Plan: plan, HostMemoryMi: f.MemoryMi, Ports: p.Ports}); err != nil {
		return err
	}
	return ErrNotBuilt
}

// DryRun writes what up would hand kind into dir, touching no Docker: the
// cluster configuration (kind-config.yaml), with the kubelet reserving
// hostMemoryMi − budget (0 when unknown: pass the Docker VM's size).
func (p *Provider) DryRun(dir string, plan *budget.Plan, hostMemoryMi int64) ([]string, error) {
	if hostMemoryMi == 0 {
		hostMemoryMi = plan.NodeMemoryMi
	}
	c, err := Config(Options{Name: p.Name, Plan: plan, HostMemoryMi: hostMemoryMi, Ports: p.Ports})
	if err != nil {
		return nil, err
	}
	b, err := Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, "kind-config.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	return []string{path}, nil
}
