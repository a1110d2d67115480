package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crawlctl/crawlctl/internal/kubetest"
	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
)

// TestUpKubeAgainstAPIServer runs `crawlctl up --provider kube`, status and
// down against a real kube-apiserver: the refusal without KEDA, the
// install, the status read back from the recorded cluster, and the
// uninstall.
func TestUpKubeAgainstAPIServer(t *testing.T) {
	kubeconfig := testenv.KubeAPIServer(t)
	t.Setenv("KUBECACHEDIR", t.TempDir())
	state := t.TempDir()
	crawlctl := func(args ...string) result {
		t.Helper()
		return invocation{args: args, stateHome: state}.run(t)
	}
	up := []string{"up", "--provider", "kube", "--kubeconfig", kubeconfig, "--wait=false", "--proxies", "4", "--image", "registry.example/crawlctl:test"}

	// No node has registered with this API server: nothing to size from.
	r := crawlctl("up", "--provider", "kube", "--kubeconfig", kubeconfig, "--size-from-cluster")
	if r.code != exitError || !strings.Contains(r.errOut, "has no schedulable node to size the stack from") {
		t.Errorf("up --size-from-cluster without nodes: exit %d, %q", r.code, r.errOut)
	}
	if r = crawlctl("up", "--provider", "kube", "--kubeconfig", kubeconfig, "--size-from-cluster", "--node-memory", "8Gi"); r.code != exitUsage {
		t.Errorf("--size-from-cluster with --node-memory: exit %d, %q", r.code, r.errOut)
	}

	r = crawlctl(up...)
	if r.code != exitError || !strings.Contains(r.errOut, "--install-keda") || !strings.Contains(r.errOut, "helm install keda") {
		t.Fatalf("up without KEDA: exit %d, stderr %q; want a refusal naming how to install KEDA", r.code, r.errOut)
	}
	clients := kubetest.Connect(t, kubeconfig)
	// KEDA comes from its chart repository (a stand-in served on
	// loopback), installed by up --install-keda.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	const kedaVersion = "2.17.0-standin"
	up = append(up, "--install-keda", "--keda-repo", kubetest.KEDAChartRepo(t, kedaVersion), "--keda-version", kedaVersion)
	// One node, with twice the default budget to give: the install below
	// sizes from it.
	node, err := clients.Kube.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourceCPU: resource.MustParse("8")}
	if _, err := clients.Kube.CoreV1().Nodes().UpdateStatus(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	up = append(up, "--size-from-cluster")

	r = crawlctl(append(up, "-o", "json")...)
	if r.code != exitOK {
		t.Fatalf("up: exit %d: %s", r.code, r.errOut)
	}
	var res struct {
		Release, Namespace, Status string
		Revision                   int
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("up -o json: %v\n%s", err, r.out)
	}
	if res.Release != "crawl" || res.Namespace != "crawl" || res.Revision != 1 || res.Status != "deployed" {
		t.Errorf("up gave %+v, want release crawl revision 1 deployed in namespace crawl", res)
	}
	if !strings.Contains(r.errOut, "installing or upgrading release crawl") || !strings.Contains(r.errOut, "1 schedulable nodes with 16384Mi and 8000m") ||
		!strings.Contains(r.errOut, "installing KEDA "+kedaVersion) {
		t.Errorf("up showed no progress on stderr: %q", r.errOut)
	}
	in := budget.DefaultInput()
	in.NodeMemory, in.NodeCPU, in.Proxies = "16384Mi", "8000m", 4
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	so, err := clients.Dynamic.Resource(kubetest.ScaledObjects).Namespace("crawl").Get(context.Background(), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedInt64(so.Object, "spec", "maxReplicaCount"); got != int64(plan.MaxWorkers) || plan.MaxWorkers <= 32 {
		t.Errorf("workers' maxReplicaCount %d, want %d, the budget of a 16Gi node", got, plan.MaxWorkers)
	}

	r = crawlctl("status", "-o", "json")
	if r.code != exitOK {
		t.Fatalf("status: exit %d: %s", r.code, r.errOut)
	}
	var st struct {
		Revision  int
		Workloads []struct {
			Kind, Name     string
			Desired, Ready int
		}
	}
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.out)
	}
	found := false
	for _, w := range st.Workloads {
		if w.Name == "proxy" {
			found = w.Kind == "StatefulSet" && w.Desired == 4
		}
	}
	if !found || st.Revision != 1 {
		t.Errorf("status: revision %d, workloads %+v; want revision 1 with a StatefulSet proxy of 4", st.Revision, st.Workloads)
	}
	if r = crawlctl("status"); !strings.Contains(r.out, "WORKLOAD") || !strings.Contains(r.out, "proxy") {
		t.Errorf("status table:\n%s", r.out)
	}

	// seed and collect go to the local ends of the port-forwards up
	// printed; without them, they say so.
	for _, args := range [][]string{{"seed", "--count", "1"}, {"collect"}} {
		r = crawlctl(args...)
		if r.code != exitError || !strings.Contains(r.errOut, "is the port-forward running? kubectl -n crawl port-forward svc/api 8088:8080") {
			t.Errorf("%v without a port-forward: exit %d, %q", args, r.code, r.errOut)
		}
	}

	// The stack's name is taken: a local stack of the same name is refused.
	if r = crawlctl("up", "--provider", "local"); r.code != exitUsage || !strings.Contains(r.errOut, "run `crawlctl down` first") {
		t.Errorf("local up over a kube stack: exit %d, %q", r.code, r.errOut)
	}

	if r = crawlctl("down"); r.code != exitOK || !strings.Contains(r.errOut, "is uninstalled") {
		t.Fatalf("down: exit %d: %s", r.code, r.errOut)
	}
	if r = crawlctl("status"); r.code != exitError || !strings.Contains(r.errOut, "is not up") {
		t.Errorf("status after down: exit %d, %q; want the stack forgotten", r.code, r.errOut)
	}
}

// TestRuntimeBuildLeavesOutProviders builds the runtime build (-tags
// crawlctl_runtime), the binary of the stack's images: it links no Helm
// SDK and no local provider (whose Prometheus TSDB would cost every
// component's start), and the commands that bring a stack up say which
// build to use instead.
func TestRuntimeBuildLeavesOutProviders(t *testing.T) {
	bin := testenv.CrawlctlRuntime(t)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		if strings.HasPrefix(d.Path, "helm.sh/") || d.Path == "github.com/prometheus/prometheus" {
			t.Errorf("the runtime build links %s %s", d.Path, d.Version)
		}
	}
	for _, args := range [][]string{
		{"up", "--provider", "kube", "--kubeconfig", "testdata/unreachable.kubeconfig"},
		{"up", "--provider", "kube", "--dry-run", "-d", t.TempDir()},
		{"up", "--provider", "local"},
		{"run", "supervisor", "--state-dir", t.TempDir()},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "this crawlctl is the runtime build") {
			t.Errorf("runtime build %v: %v\n%s\nwant a refusal naming the full build", args, err, out)
		}
	}
}
