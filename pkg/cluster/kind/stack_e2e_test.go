package kind_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/crawlctl/crawlctl/internal/kubetest"
	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// TestStackOnKind runs the whole stack on a real kind cluster, as a user
// types it, with the images scripts/kind-offline.sh builds here (its
// exports: the node image, the chart values naming the stack's images and
// the Kafka stand-in, and KEDA's chart repository): every workload Ready,
// each pod's memory limit the budget's, KEDA (built from its source)
// scaling workers above one during the run and back down after, a worker
// pod deleted mid-run costing nothing, the run drained with exact
// accounting, every edge stored in PostgreSQL, the replicas and lag panels
// non-empty, and the node container under its memory cap throughout.
func TestStackOnKind(t *testing.T) {
	testenv.RequireEnv(t, "scripts/kind-offline.sh builds what this test runs and scripts/test.sh sets it",
		"CRAWLCTL_NODE_IMAGE", "CRAWLCTL_VALUES", "CRAWLCTL_KEDA_REPO", "CRAWLCTL_BROWSER_BASE")
	const name = "kind-stack"
	home := t.TempDir()
	bin, rt := testenv.Crawlctl(t), testenv.CrawlctlRuntime(t)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+home, "XDG_CONFIG_HOME="+home, "CRAWLCTL_NAME="+name)
		cmd.Dir = home
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	kindcluster.NewProvider(kindcluster.ProviderWithDocker()).Delete(name, "") // an interrupted run's
	t.Cleanup(func() { run("down", "--provider", "kind") })
	ctx := context.Background()

	// With one browser worker. The scaled pods, the proxies and Chromium
	// request little CPU, so that the stack and what KEDA asks for fit in
	// two CPUs' requests (the budget caps the workers at 11); 8
	// partitions cap them at 8.
	sizing := []string{"--node-cpu", "2", "--worker-cpu-request", "10m", "--graph-writer-cpu-request", "10m", "--proxy-cpu-request", "20m",
		"--grid-workers", "1", "--browser-cpu-request", "100m", "--partitions", "8"}
	pw := testenv.Playwright(t) // the client's playwright-core, before the cluster
	start := time.Now()
	// Real time (Open Library's 3 req/s per egress): the run lasts long
	// enough for KEDA (a 5 s poll, the HPA's 15 s sync) to scale workers
	// up and for one to be deleted mid-run; at a factor of 10 it drains
	// in seconds (bench/kind.sh measures that).
	_, errOut, err := run(append([]string{"up", "--provider", "kind", "--sim-time-factor", "1", "--runtime-binary", rt, "--timeout", "10m"}, sizing...)...)
	if err != nil || !strings.Contains(errOut, "✓ KEDA: KEDA 2.17.0 installed") || !strings.Contains(errOut, "workloads ready") {
		t.Fatalf("up: %v\n%s", err, errOut)
	}
	t.Logf("up in %v", time.Since(start).Round(time.Second))

	in := budget.DefaultInput()
	in.NodeCPU, in.Partitions, in.GridWorkers = "2", 8, 1
	in.Sizes.Worker.CPURequest, in.Sizes.GraphWriter.CPURequest, in.Sizes.Proxy.CPURequest, in.Sizes.Browser.CPURequest = "10m", "10m", "20m", "100m"
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run("status", "-o", "json")
	var st kube.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Workloads) < 10 {
		t.Fatalf("status: %v %s", err, out)
	}
	for _, w := range st.Workloads {
		c, ok := plan.Component(w.Name)
		if w.Ready < 1 || !ok || w.MemoryLimitMi != c.LimitMemoryMi {
			t.Errorf("workload %+v: want ready, with the budget's %dMi limit (%+v)", w, c.LimitMemoryMi, c)
		}
	}

	kc := kubetest.Connect(t, filepath.Join(home, "crawlctl", name, "kind", "kubeconfig"))
	// Every pod's requests and limits, CPU and memory, are the budget's
	// (KEDA's own, in namespace keda, come from KEDAValues).
	for _, ns := range []string{"crawl", "keda"} {
		pods, err := kc.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pod := range pods.Items {
			comp := pod.Labels["app.kubernetes.io/name"]
			if ns == "keda" {
				comp = map[string]string{"keda-operator": budget.KEDAOperator, "keda-metrics-apiserver": budget.KEDAMetricsAPIServer,
					"keda-admission-webhooks": budget.KEDAAdmissionWebhooks}[pod.Labels["app"]]
			}
			c, ok := plan.Component(comp)
			if !ok {
				t.Errorf("pod %s/%s (%q) is no component of the budget", ns, pod.Name, comp)
				continue
			}
			r := pod.Spec.Containers[0].Resources
			got := [4]int64{r.Requests.Memory().Value() >> 20, r.Limits.Memory().Value() >> 20, r.Requests.Cpu().MilliValue(), r.Limits.Cpu().MilliValue()}
			if want := [4]int64{c.RequestMemoryMi, c.LimitMemoryMi, c.RequestCPUm, c.LimitCPUm}; got != want {
				t.Errorf("pod %s/%s: requests/limits %v (Mi, Mi, m, m), want the budget's %v", ns, pod.Name, got, want)
			}
		}
	}
	d, err := kind.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// During the run: the most workers KEDA asked for, one worker pod
	// deleted, and the node container's memory against its cap.
	var (
		mu          sync.Mutex
		maxReplicas int32
		deleted     string
		peakMem     uint64
		samples     int
	)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for sctx.Err() == nil {
			if dep, err := kc.Kube.AppsV1().Deployments("crawl").Get(sctx, "worker", metav1.GetOptions{}); err == nil {
				mu.Lock()
				maxReplicas = max(maxReplicas, *dep.Spec.Replicas)
				mu.Unlock()
			}
			if pods, err := kc.Kube.CoreV1().Pods("crawl").List(sctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=worker"}); err == nil && deleted == "" && len(pods.Items) > 1 {
				deleted = pods.Items[0].Name
				kc.Kube.CoreV1().Pods("crawl").Delete(sctx, deleted, metav1.DeleteOptions{})
			}
			if s, err := d.ContainerStats(sctx, kind.NodeContainer(name), client.ContainerStatsOptions{Stream: false}); err == nil {
				var v struct {
					MemoryStats struct {
						Usage uint64 `json:"usage"`
					} `json:"memory_stats"`
				}
				if json.NewDecoder(s.Body).Decode(&v) == nil {
					peakMem, samples = max(peakMem, v.MemoryStats.Usage), samples+1
				}
				s.Body.Close()
			}
			select {
			case <-sctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	})

	if _, errOut, err := run("seed", "--count", "10", "--max-depth", "2"); err != nil {
		t.Fatalf("seed: %v\n%s", err, errOut)
	}
	raw := filepath.Join(home, "raw")
	out, errOut, err = run("collect", "--until-drained", "--out", raw, "--step", "2s", "--rate-window", "10s")
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("collect: %v\n%s", err, errOut)
	}
	dir := strings.TrimSpace(out)
	var meta struct{ Run runstate.Run }
	if b, err := os.ReadFile(filepath.Join(dir, "run.json")); err != nil || json.Unmarshal(b, &meta) != nil {
		t.Fatalf("run.json: %v", err)
	}
	c := meta.Run.Counters
	if c.Enqueued == 0 || c.Enqueued != c.Crawled+c.Deduped+c.DLQ || c.EdgesWritten == 0 {
		t.Errorf("accounting %+v: want enqueued = crawled + deduped + dlq, and edges", c)
	}
	if deleted == "" || maxReplicas < 2 {
		t.Errorf("KEDA asked for at most %d workers; deleted pod %q: want more than one worker, and one deleted", maxReplicas, deleted)
	}
	if limit := uint64(plan.NodeMemoryMi) << 20; samples == 0 || peakMem >= limit {
		t.Errorf("node container memory peaked at %dMi over %d samples, cap %dMi", peakMem>>20, samples, plan.NodeMemoryMi)
	}
	t.Logf("%d URLs, %d edges; KEDA asked for up to %d workers; node memory peak %dMi of %dMi", c.Enqueued, c.EdgesWritten, maxReplicas, peakMem>>20, plan.NodeMemoryMi)

	// Every edge is in PostgreSQL.
	psql := exec.Command("docker", "exec", kind.NodeContainer(name), "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
		"-n", "crawl", "exec", "graph-db-0", "--", "psql", "-U", "crawl", "-tAc", "select count(*) from graph_edges")
	b, err := psql.Output()
	if n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || n != c.EdgesWritten {
		t.Errorf("graph_edges holds %q (%v), want the run's %d edges", b, err, c.EdgesWritten)
	}
	// The replicas (kube-state-metrics) and lag panels have data.
	for _, panel := range []string{"replicas", "frontier_lag"} {
		if rows := readCSV(t, filepath.Join(dir, "csv_data", panel+".csv")); len(rows) < 3 || len(rows[0]) < 2 || !hasValue(rows) {
			t.Errorf("%s.csv is empty: %v", panel, rows)
		}
	}
	// A real Playwright session through the grid's host port, with the
	// grid's token, on the browser worker built on scripts/kind-offline.sh's
	// base (Debian's Chromium).
	sec, err := kc.Kube.CoreV1().Secrets("crawl").Get(ctx, "grid-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	session, _ := json.Marshal(map[string]any{"ws": fmt.Sprintf("ws://127.0.0.1:%d/?token=%s", stack.DefaultPorts.Grid, sec.Data["token"]),
		"sessions": 1, "concurrency": 1, "url": "data:text/html,<title>kind grid</title>"})
	client := exec.Command("node", "../../runtime/grid/testdata/client.cjs", string(session))
	client.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(pw, "node_modules"))
	if out, err := client.Output(); err != nil || !strings.Contains(string(out), `"ok":true`) || !strings.Contains(string(out), `"title":"kind grid"`) {
		t.Errorf("a Playwright session through the grid's host port: %v\n%s", err, out)
	}

	// And back down to one worker after the trigger's cooldown.
	testenv.Eventually(t, 3*time.Minute, "KEDA to scale the workers back to 1", func() bool {
		dep, err := kc.Kube.AppsV1().Deployments("crawl").Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && *dep.Spec.Replicas == 1
	})

	if _, errOut, err := run("down", "--provider", "kind"); err != nil {
		t.Fatalf("down: %v\n%s", err, errOut)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// hasValue reports whether any data cell is filled.
func hasValue(rows [][]string) bool {
	for _, r := range rows[1:] {
		for _, v := range r[1:] {
			if v != "" {
				return true
			}
		}
	}
	return false
}
