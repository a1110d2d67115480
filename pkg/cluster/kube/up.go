package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/stack"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

// Result is what Up did.
type Result struct {
	Release   string          `json:"release"`
	Namespace string          `json:"namespace"`
	Revision  int             `json:"revision"`
	Status    string          `json:"status"`
	Server    string          `json:"server"`
	Endpoints stack.Endpoints `json:"endpoints"`
	// PortForward: the endpoints answer through `kubectl port-forward`.
	PortForward bool `json:"portForward,omitempty"`
	// Waited: every workload was ready when Up returned.
	Waited bool `json:"waited"`
}

// WriteTable prints where the stack is and how to reach it.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "stack %q is installed in %s (namespace %s, release %s revision %d, %s)\n", r.Release, r.Server, r.Namespace, r.Release, r.Revision, r.Status)
	if !r.Waited {
		fmt.Fprintf(w, "not waiting for the pods (--wait=false): crawlctl status shows them\n")
	}
	e := r.Endpoints
	fmt.Fprintf(w, "  api:        %s\n  prometheus: %s\n  grid:       %s\n", e.API, e.Prometheus, e.Grid)
	if r.PortForward {
		fmt.Fprintf(w, "reach them with: %s\n", stack.PortForwards(r.Namespace))
	}
	_, err := fmt.Fprintf(w, "next: crawlctl seed --count 20\n")
	return err
}

// ErrNoKEDA: the cluster does not serve KEDA's ScaledObject.
var ErrNoKEDA = errors.New("the cluster has no KEDA")

// Up installs the stack, or upgrades it to plan when it is installed, in
// the steps UpSteps lists.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan, o stack.UpOptions) (stack.Report, error) {
	res := &Result{}
	if err := stack.RunSteps(ctx, p.print, p.UpSteps(plan, &o, res)...); err != nil {
		return nil, err
	}
	return res, nil
}

// UpSteps are the steps of an install into the cluster, filling res:
// cluster (it answers), KEDA (found, or installed with o.InstallKEDA),
// record (where the stack is, kept before anything is installed so that a
// failed install can still be inspected and removed), chart (install or
// upgrade the release) and wait (every workload ready, with o.Wait). Each
// step reads o when it runs, so an earlier step (the kind provider's
// images) may fill it.
func (p *Provider) UpSteps(plan *budget.Plan, o *stack.UpOptions, res *Result) []stack.Step {
	var (
		kc     *kubernetes.Clientset
		server string
	)
	steps := []stack.Step{
		{Name: "cluster", Do: func(context.Context) (string, error) {
			if o.Timeout <= 0 {
				o.Timeout = DefaultUpTimeout
			}
			if _, err := UserValues(o); err != nil {
				return "", err
			}
			var err error
			kc, server, err = p.clientset()
			return server + " answers", err
		}},
		{Name: "KEDA", Do: func(ctx context.Context) (string, error) {
			err := requireKEDA(kc)
			if err == nil {
				// Its CRDs outlive a failed install: the metrics API says
				// whether KEDA itself runs.
				if err = p.apiServiceAvailable(ctx, externalMetrics); err == nil {
					return "the cluster serves " + kedaGroupVersion + " and " + externalMetrics, nil
				}
				err = fmt.Errorf("%w: KEDA's CRDs are installed, but %v", ErrNoKEDA, err)
			}
			if !errors.Is(err, ErrNoKEDA) || o.InstallKEDA == nil || !*o.InstallKEDA {
				return "", err
			}
			if err := p.installKEDA(ctx, kc, plan, o); err != nil {
				return "", err
			}
			return fmt.Sprintf("KEDA %s installed into namespace %s", o.KEDAVersion, deploy.KEDANamespace), nil
		}},
		{Name: "record", Do: func(context.Context) (string, error) {
			r := p.record(server)
			res.Server, res.Endpoints, res.PortForward = server, r.Endpoints, r.PortForward
			return p.RecordCluster()
		}},
		{Name: "chart", Do: func(ctx context.Context) (string, error) {
			d, err := deploy.NewDeployer(p.kubeconfig, p.context, p.namespace, p.log)
			if err != nil {
				return "", err
			}
			p.print.Detail("installing or upgrading release %s in namespace %s (%d proxies, up to %d workers)", p.release, p.namespace, plan.Proxies, plan.MaxWorkers)
			user, err := UserValues(o)
			if err != nil {
				return "", err
			}
			rel, err := d.Apply(ctx, deploy.Options{Plan: plan, Release: p.release, Namespace: p.namespace,
				Image: o.Image, BrowserImage: o.BrowserImage, Target: o.Target, User: user,
				SimTimeFactor: o.SimTimeFactor, ProxyAssignment: o.ProxyAssignment}, deploy.ApplyOptions{Timeout: o.Timeout})
			if err != nil {
				return "", err
			}
			res.Release, res.Namespace, res.Revision, res.Status = rel.Name, rel.Namespace, rel.Version, rel.Info.Status.String()
			r := p.record(server)
			dir, _ := stack.Dir(p.release) // checked by record
			if err := timeline.Append(dir, timeline.New(r.Provider, plan, o.ProxyAssignment, nil)); err != nil {
				return "", err
			}
			return fmt.Sprintf("release %s revision %d %s", rel.Name, rel.Version, res.Status), nil
		}},
	}
	return append(steps, stack.Step{Name: "wait", Do: func(ctx context.Context) (string, error) {
		if !o.Wait {
			return "not waiting (--wait=false)", nil
		}
		n, err := p.waitWorkloads(ctx, kc, o.Timeout)
		res.Waited = err == nil
		return fmt.Sprintf("%d workloads ready", n), err
	}})
}

// UserValues reads the user's chart values (--values, --set); a bad file
// or key is a usage error.
func UserValues(o *stack.UpOptions) (map[string]any, error) {
	user, err := deploy.UserValues(o.Values, o.Set)
	if err == nil {
		err = deploy.CheckUser(user)
	}
	if err != nil {
		return nil, stack.Usagef("%w", err)
	}
	return user, nil
}

// waitWorkloads waits until every Deployment and StatefulSet of the
// release has its replicas ready, and says how many there are.
func (p *Provider) waitWorkloads(ctx context.Context, kc kubernetes.Interface, timeout time.Duration) (int, error) {
	n := 0
	err := waitFor(ctx, timeout, func() error {
		ws, err := p.workloads(ctx, kc)
		if err != nil {
			return err
		}
		n = len(ws)
		var waiting []string
		for _, w := range ws {
			if w.Ready < w.Desired {
				waiting = append(waiting, fmt.Sprintf("%s %d/%d", w.Name, w.Ready, w.Desired))
			}
		}
		if len(waiting) > 0 {
			return fmt.Errorf("not ready: %s (kubectl -n %s get pods)", strings.Join(waiting, ", "), p.namespace)
		}
		return nil
	})
	return n, err
}

// externalMetrics is the APIService KEDA's metrics server serves, which
// the HPAs behind ScaledObjects read.
const externalMetrics = "v1beta1.external.metrics.k8s.io"

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// kedaCRDWait bounds the wait for KEDA's CRD to be served once its
// metrics API is.
const kedaCRDWait = 30 * time.Second

// installKEDA installs KEDA from its chart, sized from plan, waits for its
// workloads and its external metrics API, and checks its CRD is served.
func (p *Provider) installKEDA(ctx context.Context, kc kubernetes.Interface, plan *budget.Plan, o *stack.UpOptions) error {
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, deploy.KEDANamespace, p.log)
	if err != nil {
		return err
	}
	o.KEDARepo, o.KEDAVersion = cmp.Or(o.KEDARepo, stack.KEDARepo), cmp.Or(o.KEDAVersion, stack.KEDAVersion)
	p.print.Detail("installing KEDA %s from %s into namespace %s", o.KEDAVersion, o.KEDARepo, deploy.KEDANamespace)
	if _, err := d.ApplyKEDA(ctx, plan, deploy.KEDAOptions{RepoURL: o.KEDARepo, Version: o.KEDAVersion}, deploy.ApplyOptions{Wait: o.Wait, Timeout: o.Timeout}); err != nil {
		return err
	}
	p.print.Detail("waiting for KEDA's external metrics API (%s)", externalMetrics)
	if err := p.waitAPIService(ctx, externalMetrics, o.Timeout); err != nil {
		return err
	}
	return waitFor(ctx, kedaCRDWait, func() error { return requireKEDA(kc) })
}

// waitAPIService waits until the aggregated API name is Available.
func (p *Provider) waitAPIService(ctx context.Context, name string, timeout time.Duration) error {
	return waitFor(ctx, timeout, func() error { return p.apiServiceAvailable(ctx, name) })
}

// apiServiceAvailable says whether the aggregated API name is Available.
func (p *Provider) apiServiceAvailable(ctx context.Context, name string) error {
	cfg, err := p.restConfig()
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
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
