package kind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// The provider's waits.
const (
	// createWait is how long kind's create waits for the control plane.
	createWait = 3 * time.Minute
	// readyWait bounds the wait for the node to be Ready and CoreDNS to
	// answer (kind's own wait only warns when it times out).
	readyWait = 3 * time.Minute
)

// Provider is the kind provider of one named stack: it creates (or
// reuses) a single-node kind cluster sized and capped to the budget, loads
// the images into it, and installs the stack with the kube provider.
type Provider struct {
	name      string
	namespace string
	ports     stack.Ports
	print     stack.Printer
	log       *slog.Logger
	// keepCluster: Down uninstalls the stack and leaves the cluster (the
	// provider of a recorded stack, `crawlctl down`); otherwise Down
	// deletes the cluster (`crawlctl down --provider kind`).
	keepCluster bool
}

// Option configures a Provider.
type Option func(*Provider)

// WithPrinter gets the progress lines (nil: quiet).
func WithPrinter(pr stack.Printer) Option { return func(p *Provider) { p.print = pr } }

// WithLogger gets kind's and Helm's own messages (nil: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// WithNamespace installs the stack into ns (default kube's).
func WithNamespace(ns string) Option {
	return func(p *Provider) {
		if ns != "" {
			p.namespace = ns
		}
	}
}

// New is the kind provider of the stack called name, its cluster's name.
func New(name string, opts ...Option) *Provider {
	p := &Provider{name: name, namespace: kube.DefaultNamespace, ports: stack.DefaultPorts, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// FromRecord is the provider of a stack recorded in a kind cluster: its
// Down uninstalls the stack and keeps the cluster.
func FromRecord(r stack.Record, opts ...Option) *Provider {
	p := New(r.Release, append([]Option{WithNamespace(r.Namespace)}, opts...)...)
	p.keepCluster = true
	return p
}

func (p *Provider) kind() Kind { return NewKind(p.log) }

// dir is where the cluster's files are kept (its kubeconfig).
func (p *Provider) dir() (string, error) {
	d, err := stack.Dir(p.name)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kind"), nil
}

// kube is the kube provider on the cluster, recording the kind cluster
// and its host ports.
func (p *Provider) kube(kubeconfig string) *kube.Provider {
	return kube.NewProvider(p.name, kube.WithKubeconfig(kubeconfig, ""), kube.WithNamespace(p.namespace),
		kube.WithPrinter(p.print), kube.WithLogger(p.log), kube.WithRecord(func(r *stack.Record) {
			r.Provider, r.Endpoints, r.PortForward = stack.Kind, p.ports.Endpoints(), false
		}))
}

// Up creates the cluster unless kind has it, in steps: preflight (the
// Docker daemon against the plan), config, create, cap node (the node
// container's memory, swap included, at the budget), kubeconfig, wait
// ready (node Ready, CoreDNS ready), images (the runtime build into the
// node, unless o names images), then the kube provider's steps: cluster,
// KEDA (installed unless o.InstallKEDA is false), record, chart, wait.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan, o stack.UpOptions) (stack.Report, error) {
	if o.InstallKEDA == nil {
		install := true // crawlctl's own cluster: KEDA is part of the stack
		o.InstallKEDA = &install
	}
	dir, err := p.dir()
	if err != nil {
		return nil, err
	}
	d, err := NewDocker()
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	var (
		k          = p.kind()
		facts      Facts
		cfg        *v1alpha4.Cluster
		cfgCreated bool
		kubeconfig = filepath.Join(dir, "kubeconfig")
		kp         = p.kube(kubeconfig)
		res        = &kube.Result{}
	)
	steps := []stack.Step{
		{Name: "preflight", Do: func(ctx context.Context) (string, error) {
			if _, err := kube.UserValues(&o); err != nil {
				return "", err
			}
			var err error
			if facts, err = Preflight(ctx, d, plan, exec.LookPath); err != nil {
				return "", err
			}
			for _, w := range facts.Warnings {
				p.print.Detail("warning: %s", w)
			}
			return fmt.Sprintf("Docker at %s has %dMi and %d CPUs (cgroup v%s): the %dMi budget fits",
				d.DaemonHost(), facts.MemoryMi, facts.CPUs, facts.CgroupVersion, plan.NodeMemoryMi), nil
		}},
		{Name: "config", Do: func(context.Context) (string, error) {
			var err error
			if cfg, err = Config(Options{Name: p.name, Plan: plan, HostMemoryMi: facts.MemoryMi, Ports: p.ports,
				NodeImage: o.NodeImage, CgroupV1: facts.CgroupVersion == "1"}); err != nil {
				return "", stack.Usagef("%w", err)
			}
			return fmt.Sprintf("node image %s, kubelet reserving %dMi above the budget", cfg.Nodes[0].Image, facts.MemoryMi-plan.NodeMemoryMi), nil
		}},
		{Name: "create", Do: func(ctx context.Context) (string, error) {
			var err error
			hadNetwork := networkExists(ctx, d, Network())
			if cfgCreated, err = Ensure(k, cfg, createWait); err != nil {
				return "", err
			}
			if !cfgCreated {
				if err := checkOwned(ctx, d, dir, p.name); err != nil {
					return "", err
				}
				return fmt.Sprintf("kind cluster %s exists, created by this stack: reusing it", p.name), nil
			}
			made := ""
			if !hadNetwork && networkExists(ctx, d, Network()) {
				made = Network()
			}
			return fmt.Sprintf("kind cluster %s", p.name), claim(ctx, d, dir, p.name, made)
		}},
		{Name: "cap node", Do: func(ctx context.Context) (string, error) {
			if err := CapNode(ctx, d, p.name, plan.NodeMemoryMi); err != nil {
				return "", err
			}
			return fmt.Sprintf("node container %s at %dMi, swap included", NodeContainer(p.name), plan.NodeMemoryMi), nil
		}},
		{Name: "kubeconfig", Do: func(context.Context) (string, error) {
			return kubeconfig, p.writeKubeconfig(k, dir, kubeconfig)
		}},
		{Name: "wait ready", Do: func(ctx context.Context) (string, error) {
			return "node Ready, CoreDNS ready", kp.WaitReady(ctx, readyWait)
		}},
		{Name: "images", Do: func(ctx context.Context) (string, error) {
			return p.images(ctx, d, plan, &o)
		}},
	}
	if o.ClusterOnly {
		steps = append(steps[:len(steps)-1], stack.Step{Name: "record", Do: func(context.Context) (string, error) {
			return kp.RecordCluster()
		}})
		if err := stack.RunSteps(ctx, p.print, steps...); err != nil {
			return nil, err
		}
		return p.clusterStatus(ctx, kp, d)
	}
	if err := stack.RunSteps(ctx, p.print, append(steps, kp.UpSteps(plan, &o, res)...)...); err != nil {
		return nil, err
	}
	return res, nil
}

func (p *Provider) writeKubeconfig(k Kind, dir, path string) error {
	kc, err := k.KubeConfig(p.name, false)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig of kind cluster %s: %w", p.name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		return fmt.Errorf("writing the cluster's kubeconfig: %w", err)
	}
	return nil
}

// images builds the runtime (and, with a grid, the browser worker) image
// from the runtime build and loads it into the node, unless o names them;
// it sets o's images.
func (p *Provider) images(ctx context.Context, d *client.Client, plan *budget.Plan, o *stack.UpOptions) (string, error) {
	needBrowser := plan.GridWorkers > 0 && o.BrowserImage == ""
	if o.Image != "" && !needBrowser {
		return "given: " + o.Image, nil
	}
	bin, self, err := FindRuntimeBinary(o.RuntimeBinary)
	if err != nil {
		return "", stack.Usagef("%w", err)
	}
	if self {
		p.print.Detail("warning: no %s beside this crawlctl, so the images hold this full build, which costs every pod memory "+
			"(docs/kind.md); build one with `CGO_ENABLED=0 go build -tags crawlctl_runtime -o %s ./cmd/crawlctl` or pass --runtime-binary",
			RuntimeBinaryName, RuntimeBinaryName)
	}
	if o.Image == "" {
		if o.Image, err = p.buildAndLoad(ctx, d, "runtime image", bin, RuntimeImageTag, BuildRuntimeImage); err != nil {
			return "", err
		}
	}
	if needBrowser {
		tagOf := func(bin string) (string, error) { return BrowserImageTag(bin, o.BrowserBase) }
		build := func(ctx context.Context, d Images, bin, tag string) (bool, error) {
			return BuildBrowserImage(ctx, d, bin, tag, o.BrowserBase)
		}
		if o.BrowserImage, err = p.buildAndLoad(ctx, d, "browser worker image", bin, tagOf, build); err != nil {
			return "", err
		}
	}
	if o.BrowserImage != "" {
		return o.Image + ", " + o.BrowserImage + " in the node", nil
	}
	return o.Image + " in the node", nil
}

// buildAndLoad builds an image from the static binary at bin (unless
// Docker has it) and loads it into every node of the cluster (unless the
// node has it), and returns its tag.
func (p *Provider) buildAndLoad(ctx context.Context, d Images, what, bin string, tagOf func(string) (string, error),
	build func(context.Context, Images, string, string) (bool, error)) (string, error) {
	tag, err := tagOf(bin)
	if err != nil {
		return "", err
	}
	p.print.Detail("%s %s from %s", what, tag, bin)
	if built, err := build(ctx, d, bin, tag); err != nil {
		return "", err
	} else if !built {
		p.print.Detail("%s %s: Docker has it already", what, tag)
	}
	ns, err := p.kind().ListNodes(p.name)
	if err != nil {
		return "", fmt.Errorf("listing the nodes of kind cluster %s: %w", p.name, err)
	}
	for _, n := range ns {
		if loaded, err := LoadImage(ctx, d, n, tag); err != nil {
			return "", err
		} else if !loaded {
			p.print.Detail("node %s has %s already", n, tag)
		}
	}
	return tag, nil
}

// Down deletes the stack's kind cluster, everything in it with it, and
// forgets the stack's record of it (o.Purge: its whole state directory); a
// cluster that is not there is not an error, and one of the stack's name
// that the stack did not create is refused. It reports whether there was
// one.
func (p *Provider) Down(ctx context.Context, o stack.DownOptions) (bool, error) {
	if p.keepCluster {
		dir, err := p.dir()
		if err != nil {
			return false, err
		}
		return p.kube(filepath.Join(dir, "kubeconfig")).Down(ctx, o)
	}
	sdir, err := stack.Dir(p.name)
	if err != nil {
		return false, err
	}
	if o.Purge {
		if err := stack.OwnDir(sdir); err != nil {
			return false, err
		}
	}
	dir, err := p.dir()
	if err != nil {
		return false, err
	}
	k := p.kind()
	if names, err := k.List(); err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	} else if slices.Contains(names, p.name) {
		d, err := NewDocker()
		if err != nil {
			return false, fmt.Errorf("configuring the Docker client: %w", err)
		}
		err = checkOwned(ctx, d, dir, p.name)
		d.Close()
		if err != nil {
			return false, err
		}
	}
	own := owned(dir)
	was, err := Delete(k, p.name)
	if err != nil {
		return was, err
	}
	if was && own.Network != "" {
		d, err := NewDocker()
		if err != nil {
			return was, fmt.Errorf("configuring the Docker client: %w", err)
		}
		msg, err := releaseNetwork(ctx, d, own.Network)
		d.Close()
		if err != nil {
			return was, err
		}
		if msg != "" {
			p.print.Detail("%s", msg)
		}
	}
	if err := os.Remove(filepath.Join(dir, ownerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return was, err
	}
	if r, err := stack.ReadRecord(sdir); err == nil && r != nil && r.Provider == stack.Kind {
		if err := stack.RemoveRecord(sdir); err != nil {
			return was, err
		}
	}
	if o.Purge {
		if err := stack.Purge(sdir, p.print); err != nil {
			return was, err
		}
	}
	if was {
		p.print.Print("✓ kind cluster %q is deleted", p.name)
	} else {
		p.print.Print("✓ there was no kind cluster %q", p.name)
	}
	return was, nil
}

// Status is the kube provider's, on the cluster's kubeconfig; with no
// stack installed (up --cluster-only), the cluster's own.
func (p *Provider) Status(ctx context.Context) (stack.Report, error) {
	dir, err := p.dir()
	if err != nil {
		return nil, err
	}
	kp := p.kube(filepath.Join(dir, "kubeconfig"))
	st, err := kp.Status(ctx)
	if !errors.Is(err, kube.ErrNotInstalled) {
		return st, err
	}
	d, err := NewDocker()
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	return p.clusterStatus(ctx, kp, d)
}

// Access is where the stack answers: kind's host ports.
func (p *Provider) Access(ctx context.Context) (*stack.Access, error) {
	return p.kube("").Access(ctx)
}

// DryRun writes what Up would hand kind and Helm into o.Dir, touching no
// Docker: the cluster configuration (kind-config.yaml), with the kubelet
// reserving o.HostMemoryMi − budget (0 when unknown: pass the Docker VM's
// size), and the rendered chart (manifests.yaml).
func (p *Provider) DryRun(ctx context.Context, plan *budget.Plan, uo stack.UpOptions, o stack.DryRunOptions) ([]string, error) {
	host := o.HostMemoryMi
	if host == 0 {
		host = plan.NodeMemoryMi
	}
	c, err := Config(Options{Name: p.name, Plan: plan, HostMemoryMi: host, Ports: p.ports, NodeImage: uo.NodeImage})
	if err != nil {
		return nil, stack.Usagef("%w", err)
	}
	b, err := Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	path := filepath.Join(o.Dir, "kind-config.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	manifests, err := p.kube("").DryRun(ctx, plan, uo, o)
	return append([]string{path}, manifests...), err
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

// Fits runs the preflight of Up without creating anything: whether a
// Docker daemon answers where the docker CLI would look (DOCKER_HOST, else
// the default socket) with room for plan's node. It is what --provider
// auto asks before it picks kind; the error says why not.
func Fits(ctx context.Context, plan *budget.Plan) (string, error) {
	d, err := NewDocker()
	if err != nil {
		return "", fmt.Errorf("configuring the Docker client: %w", err)
	}
	defer d.Close()
	f, err := Preflight(ctx, d, plan, exec.LookPath)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the Docker daemon at %s has room for the node (%dMi and %d CPUs, the budget's %dMi and %dm)",
		d.DaemonHost(), f.MemoryMi, f.CPUs, plan.NodeMemoryMi, plan.NodeCPUm), nil
}
