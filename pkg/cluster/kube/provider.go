// Package kube is the provider for a Kubernetes cluster that already runs:
// it installs the stack's embedded chart into it from a kubeconfig (no
// Kind, no image load: images come from a registry), sized by the same
// budget as the other providers, and reports and removes it.
package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/deploy"
)

// KEDA is where the chart's ScaledObjects live; KEDA installs the CRD.
const (
	kedaGroupVersion = "keda.sh/v1alpha1"
	kedaInstallHint  = "let crawlctl install it (--install-keda), or install it yourself (helm repo add kedacore https://kedacore.github.io/charts && " +
		"helm install keda kedacore/keda --namespace keda --create-namespace)"
)

// Provider installs one named stack into the cluster of a kubeconfig.
type Provider struct {
	kubeconfig, context, namespace, release string
	progress                                func(format string, args ...any)
	log                                     *slog.Logger
}

// Option configures a Provider.
type Option func(*Provider)

// WithKubeconfig reads the cluster from path ("": $KUBECONFIG, then
// ~/.kube/config) and context ("": its current context).
func WithKubeconfig(path, context string) Option {
	return func(p *Provider) { p.kubeconfig, p.context = path, context }
}

// WithNamespace installs into ns (default "crawl").
func WithNamespace(ns string) Option { return func(p *Provider) { p.namespace = ns } }

// WithProgress gets a line per step.
func WithProgress(f func(format string, args ...any)) Option {
	return func(p *Provider) { p.progress = f }
}

// WithLogger logs Helm's debug output.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// NewProvider is the provider of the stack called name (its Helm release).
func NewProvider(name string, opts ...Option) *Provider {
	p := &Provider{release: name, namespace: "crawl", log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Record is where p installs, for server.
func (p *Provider) Record(server string) cluster.KubeRecord {
	return cluster.KubeRecord{Kubeconfig: p.kubeconfig, Context: p.context, Namespace: p.namespace, Release: p.release, Server: server, Provider: cluster.Kube}
}

// FromRecord is the provider of a recorded stack.
func FromRecord(r cluster.KubeRecord, opts ...Option) *Provider {
	return NewProvider(r.Release, append([]Option{WithKubeconfig(r.Kubeconfig, r.Context), WithNamespace(r.Namespace)}, opts...)...)
}

// Namespace and Release say where the stack is.
func (p *Provider) Namespace() string { return p.namespace }
func (p *Provider) Release() string   { return p.release }

func (p *Provider) step(format string, args ...any) {
	if p.progress != nil {
		p.progress(format, args...)
	}
}

// UpOptions are what an install needs besides the plan.
type UpOptions struct {
	// Image and BrowserImage are the runtime images (a registry's: no
	// image is loaded into an existing cluster).
	Image, BrowserImage string
	// Target is the crawl target; empty deploys the simulator.
	Target string
	// Wait waits for every workload to be ready, up to Timeout.
	Wait    bool
	Timeout time.Duration
	// InstallKEDA installs KEDA from its official chart (KEDA says from
	// where) when the cluster has none, and waits for its external
	// metrics API.
	InstallKEDA bool
	KEDA        deploy.KEDAOptions
	// Installing, when set, is called once the cluster answered and
	// before anything is installed (to record where, so that a failed
	// install can still be inspected and removed); an error stops Up.
	Installing func(server string) error
}

// Result is what Up did.
type Result struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Revision  int    `json:"revision"`
	Status    string `json:"status"`
	Server    string `json:"server"`
}

// Up installs the stack, or upgrades it to plan when it is installed.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan, o UpOptions) (*Result, error) {
	kc, server, err := p.clientset()
	if err != nil {
		return nil, err
	}
	p.step("cluster %s answers", server)
	if err := requireKEDA(kc); errors.Is(err, ErrNoKEDA) && o.InstallKEDA {
		if err := p.installKEDA(ctx, kc, plan, o); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, p.namespace, p.log)
	if err != nil {
		return nil, err
	}
	if o.Installing != nil {
		if err := o.Installing(server); err != nil {
			return nil, err
		}
	}
	p.step("installing or upgrading release %s in namespace %s (%d proxies, up to %d workers)", p.release, p.namespace, plan.Proxies, plan.MaxWorkers)
	rel, err := d.Apply(ctx, deploy.Options{Plan: plan, Release: p.release, Namespace: p.namespace,
		Image: o.Image, BrowserImage: o.BrowserImage, Target: o.Target}, deploy.ApplyOptions{Wait: o.Wait, Timeout: o.Timeout})
	if err != nil {
		return nil, err
	}
	return &Result{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Status: rel.Info.Status.String(), Server: server}, nil
}

// externalMetrics is the APIService KEDA's metrics server serves, which
// the HPAs behind ScaledObjects read.
const externalMetrics = "v1beta1.external.metrics.k8s.io"

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// installKEDA installs KEDA from its chart, sized from plan, waits for its
// workloads and its external metrics API, and checks its CRD is served.
func (p *Provider) installKEDA(ctx context.Context, kc kubernetes.Interface, plan *budget.Plan, o UpOptions) error {
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, deploy.KEDANamespace, p.log)
	if err != nil {
		return err
	}
	p.step("installing KEDA %s from %s into namespace %s", cmp.Or(o.KEDA.Version, deploy.KEDAVersion), cmp.Or(o.KEDA.RepoURL, deploy.KEDARepo), deploy.KEDANamespace)
	if _, err := d.ApplyKEDA(ctx, plan, o.KEDA, deploy.ApplyOptions{Wait: o.Wait, Timeout: o.Timeout}); err != nil {
		return err
	}
	p.step("waiting for KEDA's external metrics API (%s)", externalMetrics)
	if err := p.waitAPIService(ctx, externalMetrics, cmp.Or(o.Timeout, 5*time.Minute)); err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, func() error { return requireKEDA(kc) })
}

// waitAPIService waits until the aggregated API name is Available.
func (p *Provider) waitAPIService(ctx context.Context, name string, timeout time.Duration) error {
	cfg, err := p.restConfig()
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return waitFor(ctx, timeout, func() error {
		svc, err := dc.Resource(apiServices).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("APIService %s: %w", name, err)
		}
		conds, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" {
				if m["status"] == "True" {
					return nil
				}
				return fmt.Errorf("APIService %s is not Available (%v: %v)", name, m["reason"], m["message"])
			}
		}
		return fmt.Errorf("APIService %s reports no Available condition yet", name)
	})
}

// waitFor polls check every second until it returns nil or timeout
// passes, and then returns its last error.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// Down uninstalls the stack; a stack that is not installed is not an
// error. It reports whether there was one.
func (p *Provider) Down(ctx context.Context, timeout time.Duration) (bool, error) {
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, p.namespace, p.log)
	if err != nil {
		return false, err
	}
	if _, err := d.Status(p.release); errors.Is(err, deploy.ErrNoRelease) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	p.step("uninstalling release %s from namespace %s", p.release, p.namespace)
	return true, d.Uninstall(p.release, timeout)
}

// Status is the release and its workloads.
type Status struct {
	Release   string     `json:"release"`
	Namespace string     `json:"namespace"`
	Revision  int        `json:"revision"`
	State     string     `json:"state"`
	Updated   time.Time  `json:"updated"`
	Workloads []Workload `json:"workloads"`
}

// Workload is one Deployment or StatefulSet of the release.
type Workload struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Desired int32  `json:"desired"`
	Ready   int32  `json:"ready"`
	// MemoryLimitMi is the pod's summed container memory limit.
	MemoryLimitMi int64 `json:"memoryLimitMi"`
}

// ErrNoKEDA: the cluster does not serve KEDA's ScaledObject.
var ErrNoKEDA = errors.New("the cluster has no KEDA")

// ErrNotInstalled: the release is not in the cluster.
var ErrNotInstalled = errors.New("the stack is not installed")

// Status reads the release and its workloads.
func (p *Provider) Status(ctx context.Context) (*Status, error) {
	kc, _, err := p.clientset()
	if err != nil {
		return nil, err
	}
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, p.namespace, p.log)
	if err != nil {
		return nil, err
	}
	rel, err := d.Status(p.release)
	if errors.Is(err, deploy.ErrNoRelease) {
		return nil, fmt.Errorf("release %s in namespace %s: %w", p.release, p.namespace, ErrNotInstalled)
	}
	if err != nil {
		return nil, err
	}
	st := &Status{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, State: rel.Info.Status.String(), Updated: rel.Info.LastDeployed.Time}
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + p.release}
	deps, err := kc.AppsV1().Deployments(p.namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the stack's Deployments: %w", err)
	}
	for _, x := range deps.Items {
		st.Workloads = append(st.Workloads, workload("Deployment", x.Name, x.Spec.Replicas, x.Status.ReadyReplicas, x.Spec.Template.Spec.Containers))
	}
	sets, err := kc.AppsV1().StatefulSets(p.namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the stack's StatefulSets: %w", err)
	}
	for _, x := range sets.Items {
		st.Workloads = append(st.Workloads, workload("StatefulSet", x.Name, x.Spec.Replicas, x.Status.ReadyReplicas, x.Spec.Template.Spec.Containers))
	}
	return st, nil
}

func workload(kind, name string, replicas *int32, ready int32, cs []corev1.Container) Workload {
	w := Workload{Kind: kind, Name: name, Ready: ready, Desired: 1}
	if replicas != nil {
		w.Desired = *replicas
	}
	for _, c := range cs {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			w.MemoryLimitMi += q.Value() >> 20
		}
	}
	return w
}

// restConfig reads the kubeconfig's cluster.
func (p *Provider) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = p.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: p.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	cfg.Timeout = 15 * time.Second
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

// WaitReady waits up to timeout until every node is Ready and CoreDNS has
// a ready replica: kind's own wait only warns when it times out.
func (p *Provider) WaitReady(ctx context.Context, timeout time.Duration) error {
	kc, server, err := p.clientset()
	if err != nil {
		return err
	}
	err = waitFor(ctx, timeout, func() error {
		if why := notReady(ctx, kc); why != "" {
			p.step("waiting for the cluster: %s", why)
			return errors.New(why)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("the cluster at %s is not ready %w", server, err)
	}
	return nil
}

// notReady says what keeps the cluster from being ready; "" when nothing.
func notReady(ctx context.Context, kc kubernetes.Interface) string {
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "listing nodes: " + err.Error()
	}
	if len(nodes.Items) == 0 {
		return "no node has registered"
	}
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if ready = c.Status == corev1.ConditionTrue; !ready {
					return fmt.Sprintf("node %s is not Ready (%s: %s)", n.Name, c.Reason, c.Message)
				}
			}
		}
		if !ready {
			return fmt.Sprintf("node %s reports no Ready condition yet", n.Name)
		}
	}
	dns, err := kc.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return "CoreDNS: " + err.Error()
	}
	if dns.Status.ReadyReplicas < 1 {
		return "CoreDNS has no ready replica (kubectl -n kube-system get pods -l k8s-app=kube-dns)"
	}
	return ""
}

// Capacity is what the cluster's schedulable nodes can give pods.
type Capacity struct {
	Nodes    int   `json:"nodes"`
	MemoryMi int64 `json:"memoryMi"`
	CPUm     int64 `json:"cpum"`
}

// Allocatable sums the allocatable memory and CPU of the nodes pods can be
// scheduled on (cordoned nodes left out), for sizing the budget from the
// cluster.
func (p *Provider) Allocatable(ctx context.Context) (Capacity, error) {
	kc, server, err := p.clientset()
	if err != nil {
		return Capacity{}, err
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Capacity{}, fmt.Errorf("listing the nodes of %s: %w", server, err)
	}
	var c Capacity
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable {
			continue
		}
		c.Nodes++
		c.MemoryMi += n.Status.Allocatable.Memory().Value() >> 20
		c.CPUm += n.Status.Allocatable.Cpu().MilliValue()
	}
	if c.Nodes == 0 {
		return c, fmt.Errorf("the cluster at %s has no schedulable node to size the stack from: give --node-memory and --node-cpu instead", server)
	}
	return c, nil
}
