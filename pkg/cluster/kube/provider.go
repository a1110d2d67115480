// Package kube is the provider for a Kubernetes cluster that already runs:
// it installs the stack's embedded chart into it from a kubeconfig (no
// Kind, no image load: images come from a registry), sized by the same
// budget as the other providers, and reports and removes it. One verb a
// file: up.go, down.go, status.go; ready.go waits for a new cluster and
// reads what its nodes can allocate.
package kube

import (
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

// KEDA is where the chart's ScaledObjects live; KEDA installs the CRD.
const (
	kedaGroupVersion = "keda.sh/v1alpha1"
	kedaInstallHint  = "let crawlctl install it (--install-keda), or install it yourself (helm repo add kedacore https://kedacore.github.io/charts && " +
		"helm install keda kedacore/keda --namespace keda --create-namespace)"
)

// The provider's defaults.
const (
	// DefaultNamespace is the stack's namespace.
	DefaultNamespace = "crawl"
	// DefaultUpTimeout bounds an install and the wait for its workloads
	// (pulling images takes longer than starting processes).
	DefaultUpTimeout = 10 * time.Minute
	// DefaultDownTimeout bounds an uninstall.
	DefaultDownTimeout = 5 * time.Minute
	// requestTimeout bounds one request to the API server.
	requestTimeout = 15 * time.Second
)

// Provider installs one named stack into the cluster of a kubeconfig.
type Provider struct {
	kubeconfig, context, namespace, release string
	print                                   stack.Printer
	log                                     *slog.Logger
	// mark adjusts the record Up keeps (the kind provider's own facts).
	mark func(*stack.Record)
}

// Option configures a Provider.
type Option func(*Provider)

// WithKubeconfig reads the cluster from path ("": $KUBECONFIG, then
// ~/.kube/config) and context ("": its current context).
func WithKubeconfig(path, context string) Option {
	return func(p *Provider) { p.kubeconfig, p.context = path, context }
}

// WithNamespace installs into ns (default DefaultNamespace).
func WithNamespace(ns string) Option {
	return func(p *Provider) {
		if ns != "" {
			p.namespace = ns
		}
	}
}

// WithPrinter gets the progress lines (nil: quiet).
func WithPrinter(pr stack.Printer) Option { return func(p *Provider) { p.print = pr } }

// WithLogger logs Helm's debug output.
func WithLogger(l *slog.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// WithRecord lets mark adjust the record Up keeps of the stack (the kind
// provider records itself and its host ports).
func WithRecord(mark func(*stack.Record)) Option { return func(p *Provider) { p.mark = mark } }

// NewProvider is the provider of the stack called name (its Helm release).
func NewProvider(name string, opts ...Option) *Provider {
	p := &Provider{release: name, namespace: DefaultNamespace, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// FromRecord is the provider of a recorded stack.
func FromRecord(r stack.Record, opts ...Option) *Provider {
	return NewProvider(r.Release, append([]Option{WithKubeconfig(r.Kubeconfig, r.Context), WithNamespace(r.Namespace)}, opts...)...)
}

// record is where p installs, for server: by default reached through
// port-forwards to DefaultPorts.
func (p *Provider) record(server string) stack.Record {
	r := stack.Record{Kubeconfig: p.kubeconfig, Context: p.context, Namespace: p.namespace, Release: p.release, Server: server,
		Provider: stack.Kube, Endpoints: stack.DefaultPorts.Endpoints(), PortForward: true}
	if p.mark != nil {
		p.mark(&r)
	}
	return r
}

// restConfig reads the kubeconfig's cluster.
func (p *Provider) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = p.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: p.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	cfg.Timeout = requestTimeout
	return cfg, nil
}

// clientset connects to the kubeconfig's cluster and checks it answers.
func (p *Provider) clientset() (*kubernetes.Clientset, string, error) {
	cfg, err := p.restConfig()
	if err != nil {
		return nil, "", err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	if _, err := kc.Discovery().ServerVersion(); err != nil {
		return nil, "", fmt.Errorf("the cluster at %s does not answer: %w (check --kubeconfig and --context)", cfg.Host, err)
	}
	return kc, cfg.Host, nil
}

// requireKEDA checks the cluster serves KEDA's ScaledObject, which the
// chart's workers and graph writers scale by.
func requireKEDA(kc kubernetes.Interface) error {
	res, err := kc.Discovery().ServerResourcesForGroupVersion(kedaGroupVersion)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("asking the cluster for %s: %w", kedaGroupVersion, err)
	}
	if res != nil {
		for _, r := range res.APIResources {
			if r.Kind == "ScaledObject" {
				return nil
			}
		}
	}
	return fmt.Errorf("%w (no %s ScaledObject), which scales the workers and graph writers: %s", ErrNoKEDA, kedaGroupVersion, kedaInstallHint)
}
