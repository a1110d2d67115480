package kube_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crawlctl/crawlctl/internal/kubetest"
	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// TestAgainstAPIServer installs the embedded chart into a real
// kube-apiserver through the kube provider (crawlctl's deploy code),
// upgrades it to four proxies, reads its status and uninstalls it.
func TestAgainstAPIServer(t *testing.T) {
	kubeconfig := testenv.KubeAPIServer(t)
	t.Setenv("KUBECACHEDIR", t.TempDir())   // no discovery cache shared between runs
	t.Setenv("XDG_STATE_HOME", t.TempDir()) // the stack's record
	ctx := context.Background()
	const ns = "crawl"
	c := kubetest.Connect(t, kubeconfig)
	kc, dc := c.Kube, c.Dynamic
	p := kube.NewProvider("crawl", kube.WithKubeconfig(kubeconfig, ""), kube.WithNamespace(ns))

	// Without KEDA the provider refuses, saying how to install it, and
	// creates nothing.
	_, err := p.Up(ctx, mustPlan(t, 3), stack.UpOptions{Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "helm install keda") {
		t.Fatalf("Up without KEDA: %v, want a refusal naming how to install KEDA", err)
	}
	if l, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("Up without KEDA left %d Deployments (%v)", len(l.Items), err)
	}
	if _, err := p.Status(ctx); !errors.Is(err, kube.ErrNotInstalled) {
		t.Fatalf("Status before install: %v, want ErrNotInstalled", err)
	}
	kubetest.InstallKEDACRD(t, c)

	revision := 0
	apply := func(proxies int) *budget.Plan {
		t.Helper()
		plan := mustPlan(t, proxies)
		rep, err := p.Up(ctx, plan, stack.UpOptions{Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		res := rep.(*kube.Result)
		if revision++; res.Revision != revision || res.Status != "deployed" {
			t.Errorf("Up gave revision %d %s, want %d deployed", res.Revision, res.Status, revision)
		}
		return plan
	}
	check := func(plan *budget.Plan) {
		t.Helper()
		sts, err := kc.AppsV1().StatefulSets(ns).Get(ctx, "proxy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		proxy, _ := plan.Component(budget.Proxy)
		if int(*sts.Spec.Replicas) != plan.Proxies {
			t.Errorf("proxy StatefulSet has %d replicas, want %d", *sts.Spec.Replicas, plan.Proxies)
		}
		if lim := sts.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().Value() >> 20; lim != proxy.LimitMemoryMi {
			t.Errorf("proxy memory limit %dMi, want %dMi", lim, proxy.LimitMemoryMi)
		}
		so, err := dc.Resource(kubetest.ScaledObjects).Namespace(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		worker, _ := plan.Component(budget.Worker)
		if got, _, _ := unstructuredInt(so.Object, "spec", "maxReplicaCount"); got != int64(worker.Replicas) {
			t.Errorf("worker ScaledObject maxReplicaCount %d, want the budget's %d", got, worker.Replicas)
		}
		for _, name := range []string{"api", "worker", "graph-writer", "redis", "prometheus", "kube-state-metrics", "grid-proxy", "browser", "olsim"} {
			if _, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("Deployment %s: %v", name, err)
			}
		}
	}
	// Access carries the control API's token, the chart's api-token
	// Secret, which an upgrade keeps.
	apiToken := func() string {
		t.Helper()
		acc, err := p.Access(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return acc.APIToken
	}
	three := apply(3)
	check(three)
	token := apiToken()
	if s, err := kc.CoreV1().Secrets(ns).Get(ctx, "api-token", metav1.GetOptions{}); err != nil || len(token) != 32 || string(s.Data["token"]) != token {
		t.Errorf("Access gives the API token %q, want the api-token Secret's 32 characters (%v)", token, err)
	}
	four := apply(4)
	check(four)
	if got := apiToken(); got != token {
		t.Errorf("after an upgrade the API token is %q, want %q kept", got, token)
	}
	w3, _ := three.Component(budget.Worker)
	w4, _ := four.Component(budget.Worker)
	if w3.Replicas == w4.Replicas {
		t.Errorf("four proxies left the workers' cap at %d: the test would not see a change", w3.Replicas)
	}

	rep, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.(*kube.Status)
	proxy := map[string]kube.Workload{}
	for _, w := range st.Workloads {
		proxy[w.Name] = w
	}
	if w := proxy["proxy"]; w.Kind != "StatefulSet" || w.Desired != 4 || w.Ready != 0 {
		t.Errorf("status of the proxies: %+v, want a StatefulSet of 4, none ready (no kubelet)", w)
	}
	p4, _ := four.Component(budget.Proxy)
	if w := proxy["proxy"]; w.MemoryLimitMi != p4.LimitMemoryMi {
		t.Errorf("status gives the proxy pod a %dMi limit, want the budget's %dMi", w.MemoryLimitMi, p4.LimitMemoryMi)
	}
	if st.Revision != 2 || st.State != "deployed" || len(st.Workloads) < 10 {
		t.Errorf("status: revision %d %s with %d workloads, want revision 2 deployed with every workload", st.Revision, st.State, len(st.Workloads))
	}

	// A release from before the API had a token has no Secret: Access
	// gives none.
	if err := kc.CoreV1().Secrets(ns).Delete(ctx, "api-token", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := apiToken(); got != "" {
		t.Errorf("without the api-token Secret Access gives the token %q, want none", got)
	}

	if was, err := p.Down(ctx, stack.DownOptions{Timeout: time.Minute}); err != nil || !was {
		t.Fatalf("Down = %v, %v; want true, nil", was, err)
	}
	if was, err := p.Down(ctx, stack.DownOptions{Timeout: time.Minute}); err != nil || was {
		t.Fatalf("a second Down = %v, %v; want false, nil (idempotent)", was, err)
	}
	left := 0
	if l, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		left += len(l.Items)
	}
	if l, err := kc.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		left += len(l.Items)
	}
	if l, err := kc.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err == nil {
		left += len(l.Items)
	}
	if l, err := kc.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=crawlctl"}); err == nil {
		left += len(l.Items)
	}
	if l, err := kc.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=crawlctl"}); err == nil {
		left += len(l.Items)
	}
	if l, err := dc.Resource(kubetest.ScaledObjects).Namespace(ns).List(ctx, metav1.ListOptions{}); err == nil {
		left += len(l.Items)
	}
	if left != 0 {
		t.Errorf("uninstall left %d objects", left)
	}
}

func mustPlan(t *testing.T, proxies int) *budget.Plan {
	t.Helper()
	in := budget.DefaultInput()
	in.Proxies, in.GridWorkers = proxies, 1
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func unstructuredInt(obj map[string]any, path ...string) (int64, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case int64:
		return v, true, nil
	case float64:
		return int64(v), true, nil
	}
	return 0, false, nil
}

// TestWaitReady checks the readiness wait against a real API server: a
// node that is not Ready, then CoreDNS without a ready replica, keep it
// waiting, each named in the error; both fixed, it returns.
func TestWaitReady(t *testing.T) {
	kubeconfig := testenv.KubeAPIServer(t)
	ctx := context.Background()
	kc := kubetest.Connect(t, kubeconfig).Kube
	p := kube.NewProvider("crawl", kube.WithKubeconfig(kubeconfig, ""))

	if err := p.WaitReady(ctx, 1500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no node has registered") {
		t.Fatalf("WaitReady without nodes: %v", err)
	}
	node, err := kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "crawl-control-plane"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReady := func(status corev1.ConditionStatus, reason string) {
		t.Helper()
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: reason, Message: reason + " for the test"}}
		if node, err = kc.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setReady(corev1.ConditionFalse, "KubeletNotReady")
	if err := p.WaitReady(ctx, 1500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "node crawl-control-plane is not Ready (KubeletNotReady") {
		t.Fatalf("WaitReady with a NotReady node: %v", err)
	}
	setReady(corev1.ConditionTrue, "KubeletReady")
	labels := map[string]string{"k8s-app": "kube-dns"}
	dns, err := kc.AppsV1().Deployments("kube-system").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: "registry.k8s.io/coredns/coredns:v1.12.0"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx, 1500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "CoreDNS has no ready replica") {
		t.Fatalf("WaitReady with CoreDNS not ready: %v", err)
	}
	dns.Status.Replicas, dns.Status.ReadyReplicas = 1, 1
	if _, err := kc.AppsV1().Deployments("kube-system").UpdateStatus(ctx, dns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx, 10*time.Second); err != nil {
		t.Fatalf("WaitReady with a Ready node and CoreDNS: %v", err)
	}

	// Sizing from the cluster: the schedulable nodes' allocatable, a
	// cordoned node left out.
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourceCPU: resource.MustParse("4")}
	if _, err := kc.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		name     string
		cordoned bool
	}{{"worker-1", false}, {"worker-2", true}} {
		x, err := kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}, Spec: corev1.NodeSpec{Unschedulable: n.cordoned}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		x.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourceCPU: resource.MustParse("2500m")}
		if _, err := kc.CoreV1().Nodes().UpdateStatus(ctx, x, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := p.Allocatable(ctx)
	if err != nil || c != (stack.Capacity{Nodes: 2, MemoryMi: 12288, CPUm: 6500}) {
		t.Errorf("Allocatable = %+v, %v; want 2 nodes, 12288Mi, 6500m (the cordoned node left out)", c, err)
	}
}

// TestInstallsKEDAFromItsChartRepository: with InstallKEDA, Up fetches
// KEDA's chart from its repository (a stand-in chart, served on loopback
// over Helm's repository protocol), installs it into namespace keda sized
// from the budget, waits for its external metrics API, then installs the
// stack; a second Up finds KEDA and leaves it alone.
func TestInstallsKEDAFromItsChartRepository(t *testing.T) {
	kubeconfig := testenv.KubeAPIServer(t)
	t.Setenv("KUBECACHEDIR", t.TempDir())
	ctx := context.Background()
	c := kubetest.Connect(t, kubeconfig)
	const version = "2.17.0-standin"
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // Helm's chart cache
	var steps []string
	p := kube.NewProvider("crawl", kube.WithKubeconfig(kubeconfig, ""), kube.WithPrinter(func(l string) { steps = append(steps, l) }))
	plan := mustPlan(t, 3)
	install := true
	o := stack.UpOptions{Timeout: time.Minute, InstallKEDA: &install, KEDARepo: kubetest.KEDAChartRepo(t, version), KEDAVersion: version}
	if _, err := p.Up(ctx, plan, o); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(steps, "\n")
	for _, want := range []string{"installing KEDA " + version, "waiting for KEDA's external metrics API", "installing or upgrading release crawl"} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress lacks %q:\n%s", want, joined)
		}
	}
	// KEDA is a release of its own, in its namespace; the stack's
	// ScaledObjects exist.
	d, err := deploy.NewDeployer(kubeconfig, "", deploy.KEDANamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := d.Status("keda")
	if err != nil || rel.Chart.Metadata.Version != version {
		t.Fatalf("KEDA release: %v, %v", rel, err)
	}
	if _, err := c.Dynamic.Resource(kubetest.ScaledObjects).Namespace("crawl").Get(ctx, "worker", metav1.GetOptions{}); err != nil {
		t.Errorf("the worker's ScaledObject: %v", err)
	}
	steps = nil
	if _, err := p.Up(ctx, plan, o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(steps, "\n"), "installing KEDA") {
		t.Errorf("a second Up installed KEDA again:\n%s", strings.Join(steps, "\n"))
	}
}

func TestKEDAValuesAreTheBudgets(t *testing.T) {
	plan := mustPlan(t, 3)
	v, err := deploy.KEDAValues(plan)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := plan.Component(budget.KEDAOperator)
	res := v["resources"].(map[string]any)["operator"].(map[string]any)
	if got := res["limits"].(map[string]any)["memory"]; got != fmt.Sprintf("%dMi", op.LimitMemoryMi) {
		t.Errorf("KEDA operator memory limit %v, want the budget's %dMi", got, op.LimitMemoryMi)
	}
}
