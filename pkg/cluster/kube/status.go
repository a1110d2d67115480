package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Status is the release and its workloads.
type Status struct {
	Release   string     `json:"release"`
	Namespace string     `json:"namespace"`
	Server    string     `json:"server"`
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

// ErrNotInstalled: the release is not in the cluster. It is a
// stack.ErrNotUp.
var ErrNotInstalled error = notInstalled{}

type notInstalled struct{}

func (notInstalled) Error() string        { return "the stack is not installed" }
func (notInstalled) Is(target error) bool { return target == stack.ErrNotUp }

// WriteTable prints the release and a row per workload.
func (st *Status) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "stack %q (kube, %s): release %s revision %d %s, namespace %s, updated %s\n\n",
		st.Release, st.Server, st.Release, st.Revision, st.State, st.Namespace, st.Updated.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tKIND\tREADY\tDESIRED\tMEMORY LIMIT")
	for _, x := range st.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%dMi\n", x.Name, x.Kind, x.Ready, x.Desired, x.MemoryLimitMi)
	}
	return tw.Flush()
}

// Status reads the release and its workloads.
func (p *Provider) Status(ctx context.Context) (stack.Report, error) {
	kc, server, err := p.clientset()
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
	st := &Status{Release: rel.Name, Namespace: rel.Namespace, Server: server, Revision: rel.Version, State: rel.Info.Status.String(),
		Updated: rel.Info.LastDeployed.Time}
	if st.Workloads, err = p.workloads(ctx, kc); err != nil {
		return nil, err
	}
	return st, nil
}

// workloads are the release's Deployments and StatefulSets.
func (p *Provider) workloads(ctx context.Context, kc kubernetes.Interface) ([]Workload, error) {
	var out []Workload
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + p.release}
	deps, err := kc.AppsV1().Deployments(p.namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the stack's Deployments: %w", err)
	}
	for _, x := range deps.Items {
		out = append(out, workload("Deployment", x.Name, x.Spec.Replicas, x.Status.ReadyReplicas, x.Spec.Template.Spec.Containers))
	}
	sets, err := kc.AppsV1().StatefulSets(p.namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the stack's StatefulSets: %w", err)
	}
	for _, x := range sets.Items {
		out = append(out, workload("StatefulSet", x.Name, x.Spec.Replicas, x.Status.ReadyReplicas, x.Spec.Template.Spec.Containers))
	}
	return out, nil
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

// Access is where the recorded stack answers: kind's host ports, or the
// local ends of the port-forwards, with the control API's token read from
// the release's Secret.
func (p *Provider) Access(ctx context.Context) (*stack.Access, error) {
	dir, err := stack.Dir(p.release)
	if err != nil {
		return nil, err
	}
	r, err := stack.ReadRecord(dir)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, stack.NotUp(p.release, stack.ErrNotUp)
	}
	token, err := FromRecord(*r, WithLogger(p.log)).apiToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, r.Unreachable())
	}
	return &stack.Access{Endpoints: r.Endpoints, APIToken: token, Hint: r.Unreachable(), ScrapeInterval: deploy.ScrapeInterval}, nil
}

// apiTokenSecret is the chart's Secret of the control API's token (key
// "token").
const apiTokenSecret = "api-token"

// apiToken reads the control API's token from the release's namespace;
// empty when the Secret is absent (a release from before the API had
// one, which needs none).
func (p *Provider) apiToken(ctx context.Context) (string, error) {
	kc, _, err := p.clientset()
	if err != nil {
		return "", err
	}
	s, err := kc.CoreV1().Secrets(p.namespace).Get(ctx, apiTokenSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the control API's token (Secret %s in namespace %s): %w", apiTokenSecret, p.namespace, err)
	}
	return string(s.Data["token"]), nil
}
