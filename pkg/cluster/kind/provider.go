package kind

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// Provider is the kind provider of one named stack.
type Provider struct {
	Name  string
	Ports Ports
	// Progress gets one line per step (nil: quiet).
	Progress func(format string, args ...any)
	// Log gets kind's own messages (nil: discarded).
	Log *slog.Logger
}

func (p *Provider) step(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(format, args...)
	}
}

func (p *Provider) kind() Kind {
	if p.Log == nil {
		return NewKind(slog.New(slog.DiscardHandler))
	}
	return NewKind(p.Log)
}

// Cluster is the stack's kind cluster, up.
type Cluster struct {
	Name       string `json:"name"`
	Kubeconfig string `json:"kubeconfig"`
	Created    bool   `json:"created"`
	NodeMemory int64  `json:"nodeMemoryMi"`
	Facts      Facts  `json:"docker"`
}

// Up checks the Docker daemon against plan, creates the cluster (unless
// kind has it already) with the node sized to what the daemon reported,
// caps the node container at the budget and writes the cluster's
// kubeconfig into dir.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan, dir string) (*Cluster, error) {
	d, err := NewDocker()
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	p.step("preflight: Docker at %s", d.DaemonHost())
	f, err := Preflight(ctx, d, plan, exec.LookPath)
	if err != nil {
		return nil, err
	}
	p.step("preflight: Docker has %dMi and %d CPUs (cgroup v%s): the %dMi budget fits", f.MemoryMi, f.CPUs, f.CgroupVersion, plan.NodeMemoryMi)
	cfg, err := Config(Options{Name: p.Name, Plan: plan, HostMemoryMi: f.MemoryMi, Ports: p.Ports})
	if err != nil {
		return nil, err
	}
	k := p.kind()
	p.step("kind cluster %s: creating unless it exists (node image %s)", p.Name, cfg.Nodes[0].Image)
	created, err := Ensure(k, cfg, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	if !created {
		p.step("kind cluster %s exists: reusing it", p.Name)
	}
	if err := CapNode(ctx, d, p.Name, plan.NodeMemoryMi); err != nil {
		return nil, err
	}
	p.step("node container %s capped at %dMi, swap included", NodeContainer(p.Name), plan.NodeMemoryMi)
	kc, err := k.KubeConfig(p.Name, false)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig of kind cluster %s: %w", p.Name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		return nil, fmt.Errorf("writing the cluster's kubeconfig: %w", err)
	}
	return &Cluster{Name: p.Name, Kubeconfig: path, Created: created, NodeMemory: plan.NodeMemoryMi, Facts: f}, nil
}

// LoadRuntimeImage builds the runtime image from the static binary at bin
// (unless Docker has it) and loads it into every node of the cluster
// (unless the node has it), and returns its tag.
func (p *Provider) LoadRuntimeImage(ctx context.Context, bin string) (string, error) {
	return p.buildAndLoad(ctx, "runtime image", bin, RuntimeImageTag, BuildRuntimeImage)
}

// LoadBrowserImage does the same for the browser worker image (the binary
// on the Playwright image, which Docker pulls: about 2 GB the first time).
func (p *Provider) LoadBrowserImage(ctx context.Context, bin string) (string, error) {
	return p.buildAndLoad(ctx, "browser worker image", bin, BrowserImageTag, BuildBrowserImage)
}

func (p *Provider) buildAndLoad(ctx context.Context, what, bin string, tagOf func(string) (string, error),
	build func(context.Context, Images, string, string) (bool, error)) (string, error) {
	d, err := NewDocker()
	if err != nil {
		return "", fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	tag, err := tagOf(bin)
	if err != nil {
		return "", err
	}
	p.step("%s %s from %s", what, tag, bin)
	if built, err := build(ctx, d, bin, tag); err != nil {
		return "", err
	} else if !built {
		p.step("%s %s: Docker has it already", what, tag)
	}
	ns, err := p.kind().ListNodes(p.Name)
	if err != nil {
		return "", fmt.Errorf("listing the nodes of kind cluster %s: %w", p.Name, err)
	}
	for _, n := range ns {
		p.step("loading %s into node %s", tag, n)
		if loaded, err := LoadImage(ctx, d, n, tag); err != nil {
			return "", err
		} else if !loaded {
			p.step("node %s has %s already", n, tag)
		}
	}
	return tag, nil
}

// Down deletes the stack's kind cluster; a cluster that is not there is
// not an error. It reports whether there was one.
func (p *Provider) Down() (bool, error) {
	return Delete(p.kind(), p.Name)
}

// Delete deletes kind cluster name if kind lists it, and reports whether
// it did.
func Delete(k Kind, name string) (bool, error) {
	names, err := k.List()
	if err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	}
	if !slices.Contains(names, name) {
		return false, nil
	}
	if err := k.Delete(name, ""); err != nil {
		return true, fmt.Errorf("deleting kind cluster %s: %w", name, err)
	}
	return true, nil
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
