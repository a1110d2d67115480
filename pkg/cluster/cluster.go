// Package cluster brings the crawl stack up and down through one Provider:
// local (child processes of a supervisor, the embedded default), kind (a
// single-node Kind cluster crawlctl creates) or kube (a cluster that
// already runs). Every provider is sized by the same budget.Plan and
// reports the same endpoints, so seed, status and collect work on any.
// The vocabulary the providers share is in pkg/stack.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/crawlctl/crawlctl/pkg/budget"
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
		return newLocal(name, o)
	case stack.Local:
		return newLocal(name, o)
	case stack.Kind, stack.Kube:
		return newCluster(name, o)
	default:
		return nil, unknownProvider(o.provider)
	}
}

func unknownProvider(p string) error {
	return stack.Usagef("provider %q is unknown: use auto, local, kind or kube", p)
}

// Choose resolves a --provider value for stack name and says why. auto
// keeps the provider of a stack that is up (its cluster record, or a live
// local supervisor); else it picks kind when a Docker daemon answers with
// room for plan's node, and local when none answers or the daemon has too
// little room (the reason names the flags that would make kind fit). A
// cluster provider asked for while the stack runs locally is refused, as
// the local provider refuses a stack recorded in a cluster.
func Choose(ctx context.Context, name, provider string, plan *budget.Plan) (string, string, error) {
	asked := "asked for with --provider " + provider
	auto := provider == stack.Auto || provider == ""
	switch provider {
	case stack.Local:
		return provider, asked, nil
	case stack.Kind, stack.Kube, stack.Auto, "":
	default:
		return "", "", unknownProvider(provider)
	}
	dir, err := stack.Dir(name)
	if err != nil {
		return "", "", err
	}
	pid, err := localPID(dir)
	switch {
	case err == nil && !auto:
		return "", "", stack.Usagef("stack %q runs on the local provider (supervisor pid %d): run `crawlctl down` first, or name another stack with --name",
			name, pid)
	case err == nil:
		return stack.Local, fmt.Sprintf("stack %q is up on it (supervisor pid %d)", name, pid), nil
	case !errors.Is(err, stack.ErrNotUp):
		return "", "", err
	case !auto:
		return provider, asked, nil
	}
	if r, err := stack.ReadRecord(dir); err != nil {
		return "", "", err
	} else if r != nil {
		return r.Provider, fmt.Sprintf("stack %q is installed with it (in the cluster at %s)", name, r.Server), nil
	}
	why, err := kindFits(ctx, plan)
	if err != nil {
		return stack.Local, "kind does not fit: " + err.Error(), nil
	}
	return stack.Kind, why, nil
}
