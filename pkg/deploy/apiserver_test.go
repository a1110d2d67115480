package deploy

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
)

var scaledObjects = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

// TestAgainstAPIServer installs the embedded chart into a real
// kube-apiserver with crawlctl's deploy code, upgrades it to four proxies
// and uninstalls it.
func TestAgainstAPIServer(t *testing.T) {
	kubeconfig := testenv.KubeAPIServer(t)
	t.Setenv("KUBECACHEDIR", t.TempDir()) // no discovery cache shared between runs
	ctx := context.Background()
	const ns = "crawl"
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(rc)
	dc := dynamic.NewForConfigOrDie(rc)

	d, err := NewDeployer(kubeconfig, "", ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	// KEDA's CRD, as its chart would have installed it first.
	crd, err := os.ReadFile("testdata/keda-scaledobject-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.cfg.KubeClient.Build(bytes.NewReader(crd), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cfg.KubeClient.Create(res); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the ScaledObject CRD served", func() bool {
		_, err := dc.Resource(scaledObjects).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil
	})

	apply := func(proxies int) *budget.Plan {
		t.Helper()
		in := budget.DefaultInput()
		in.Proxies, in.GridWorkers = proxies, 1
		plan, err := budget.Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Apply(ctx, Options{Plan: plan, Release: "crawl", Namespace: ns}, ApplyOptions{Timeout: time.Minute}); err != nil {
			t.Fatal(err)
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
		so, err := dc.Resource(scaledObjects).Namespace(ns).Get(ctx, "worker", metav1.GetOptions{})
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
	three := apply(3)
	check(three)
	four := apply(4)
	check(four)
	w3, _ := three.Component(budget.Worker)
	w4, _ := four.Component(budget.Worker)
	if w3.Replicas == w4.Replicas {
		t.Errorf("four proxies left the workers' cap at %d: the test would not see a change", w3.Replicas)
	}

	if err := d.Uninstall("crawl", time.Minute); err != nil {
		t.Fatal(err)
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
	if l, err := dc.Resource(scaledObjects).Namespace(ns).List(ctx, metav1.ListOptions{}); err == nil {
		left += len(l.Items)
	}
	if left != 0 {
		t.Errorf("uninstall left %d objects", left)
	}
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
