// Package cluster brings the crawl stack up and down through one Provider:
// local (child processes of a supervisor, the embedded default), kind (a
// single-node Kind cluster crawlctl creates) or kube (a cluster that
// already runs). Every provider is sized by the same budget.Plan and
// reports the same endpoints, so seed, status and collect work on any.
// The vocabulary the providers share is in pkg/stack.
package cluster

import (
	"context"
	"log/slog"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Provider brings one named stack up and down, and reports it.
type Provider interface {
	// Up brings the stack up to plan, or a stack already up to new
	// settings, in named steps, one progress line each; a failure names
	// its step (stack.StepError).
	Up(ctx context.Context, plan *budget.Plan, o stack.UpOptions) (stack.Report, error)
	// Down stops or uninstalls the stack and reports whether it was up;
	// a stack that is not up is not an error.
	Down(ctx context.Context, o stack.DownOptions) (bool, error)
	// Status reports the stack; an error that is stack.ErrNotUp when it
	// is not up.
	Status(ctx context.Context) (stack.Report, error)
	// Access is where seed and collect reach the stack.
	Access(ctx context.Context) (*stack.Access, error)
}

// DryRunner is a provider that can write what Up would create without
// creating it (kind and kube).
type DryRunner interface {
	DryRun(ctx context.Context, plan *budget.Plan, uo stack.UpOptions, o stack.DryRunOptions) ([]string, error)
}

// Sizer is a provider that can size the budget from its cluster (kube).
type Sizer interface {
	Allocatable(ctx context.Context) (stack.Capacity, error)
}

// Archiver is a provider whose stacks leave their metrics and runs on
// disk (local): collect reads them when the stack is not up.
type Archiver interface {
	// Archive serves them until close is called.
	Archive(ctx context.Context) (a stack.Archive, close func(), err error)
}

// Option configures New.
type Option func(*options)

type options struct {
	provider            string
	print               stack.Printer
	log                 *slog.Logger
	kubeconfig, context string
	namespace           string
}

// WithProvider names the provider: local, kind or kube (Choose resolves
// auto). Without it New opens the stack as it was brought up.
func WithProvider(name string) Option { return func(o *options) { o.provider = name } }

// WithPrinter gets the progress lines (nil: quiet).
func WithPrinter(p stack.Printer) Option { return func(o *options) { o.print = p } }

// WithLogger gets the providers' own messages (kind's, Helm's).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithKubeconfig is the kube provider's cluster: the kubeconfig at path
// ("": $KUBECONFIG, then ~/.kube/config) and its context ("": current).
func WithKubeconfig(path, context string) Option {
	return func(o *options) { o.kubeconfig, o.context = path, context }
}

// WithNamespace is the kind and kube providers' namespace.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// New is the provider of the stack called name: the one WithProvider
// names, or without it the one the stack was brought up with (the cluster
// it was installed in, as its record says; else local).
func New(name string, opts ...Option) (Provider, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	dir, err := stack.Dir(name)
	if err != nil {
		return nil, err
	}
	switch o.provider {
	case "":
		r, err := stack.ReadRecord(dir)
		if err != nil {
			return nil, err
		}
		if r != nil {
			return fromRecord(*r, o)
		}
		return local.New(name, local.WithPrinter(o.print))
	case stack.Local:
		return local.New(name, local.WithPrinter(o.print))
	case stack.Kind, stack.Kube:
		return newCluster(name, o)
	default:
		return nil, stack.Usagef("provider %q is unknown: use auto, local, kind or kube", o.provider)
	}
}

// Choose resolves a --provider value and says why: auto means local, as
// the kind provider has not yet run against a real Docker daemon (none
// ran where it was developed); a Docker daemon answering is reported.
func Choose(ctx context.Context, provider string) (string, string, error) {
	switch provider {
	case stack.Local, stack.Kind, stack.Kube:
		return provider, "asked for with --provider " + provider, nil
	case stack.Auto, "":
		if err := dockerPing(ctx); err != nil {
			return stack.Local, "no Docker daemon answers (" + err.Error() + ")", nil
		}
		return stack.Local, "a Docker daemon answers, but the kind provider is not yet verified against one (--provider kind to use it)", nil
	default:
		return "", "", stack.Usagef("provider %q is unknown: use auto, local, kind or kube", provider)
	}
}
