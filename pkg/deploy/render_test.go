package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"

	crawlctl "github.com/crawlctl/crawlctl"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// scaledObject is the part of KEDA's ScaledObject the charts set; decoding
// into it strictly fails on any field this type does not know.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef  struct{ Name string } `json:"scaleTargetRef"`
		MinReplicaCount int                   `json:"minReplicaCount"`
		MaxReplicaCount int                   `json:"maxReplicaCount"`
		PollingInterval int                   `json:"pollingInterval"`
		CooldownPeriod  int                   `json:"cooldownPeriod"`
		Advanced        struct {
			HorizontalPodAutoscalerConfig struct {
				Behavior struct {
					ScaleDown struct {
						StabilizationWindowSeconds int `json:"stabilizationWindowSeconds"`
					} `json:"scaleDown"`
				} `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// usage is memory (Mi) and CPU (m) limits summed per component.
type usage struct{ memMi, cpum int64 }

// renderAndCheck renders for in, decodes every document strictly and sums
// the limits per component (label app.kubernetes.io/name), counting a
// scaled Deployment at its KEDA maxReplicaCount.
func renderAndCheck(t *testing.T, in budget.Input) (*budget.Plan, map[string]usage) {
	t.Helper()
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := Render(Options{Plan: plan, Release: "crawl", Namespace: "crawl"})
	if err != nil {
		t.Fatal(err)
	}
	type workload struct {
		name     string
		replicas int64
		pod      corev1.PodTemplateSpec
	}
	var workloads []workload
	maxReplicas := map[string]int64{}
	for _, doc := range strings.Split(manifest, "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-\n ") == "" {
			continue
		}
		if strings.Contains(doc, "kind: ScaledObject") {
			var so scaledObject
			if err := yaml.UnmarshalStrict([]byte(doc), &so); err != nil {
				t.Fatalf("ScaledObject does not decode strictly: %v\n%s", err, doc)
			}
			maxReplicas[so.Spec.ScaleTargetRef.Name] = int64(so.Spec.MaxReplicaCount)
			continue
		}
		obj, _, err := strict.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("document does not decode strictly into its type: %v\n%s", err, doc)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			workloads = append(workloads, workload{o.Name, int64(*o.Spec.Replicas), o.Spec.Template})
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{o.Name, int64(*o.Spec.Replicas), o.Spec.Template})
		case runtime.Object:
		}
	}
	got := map[string]usage{}
	for _, w := range workloads {
		n := w.replicas
		if m, ok := maxReplicas[w.name]; ok {
			n = m
		}
		comp := w.pod.Labels["app.kubernetes.io/name"]
		for _, c := range w.pod.Spec.Containers {
			lim := c.Resources.Limits
			if lim.Memory().IsZero() || lim.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s/%s has no requests or limits", w.name, c.Name)
			}
			u := got[comp]
			u.memMi += n * (lim.Memory().Value() >> 20)
			u.cpum += n * lim.Cpu().MilliValue()
			got[comp] = u
		}
	}
	return plan, got
}

// TestRenderMatchesBudget: for 1..6 proxies, with and without the grid and
// Grafana, every document decodes strictly and each component's rendered
// limits (at full scale) are the budget's. KEDA comes from its official
// chart and kind's control plane is reserved, so neither is rendered here.
func TestRenderMatchesBudget(t *testing.T) {
	for proxies := 1; proxies <= 6; proxies++ {
		for _, grid := range []int{0, 1} {
			for _, grafana := range []bool{false, true} {
				t.Run(fmt.Sprintf("proxies=%d/grid=%d/grafana=%v", proxies, grid, grafana), func(t *testing.T) {
					in := budget.DefaultInput()
					in.Proxies, in.GridWorkers, in.Grafana = proxies, grid, grafana
					plan, got := renderAndCheck(t, in)
					for _, c := range plan.Components {
						if c.Reserved || strings.HasPrefix(c.Name, "keda-") {
							continue
						}
						g := got[c.Name]
						if g.memMi != c.TotalLimitMemoryMi || g.cpum != c.TotalLimitCPUm {
							t.Errorf("%s: rendered %dMi/%dm, budget %dMi/%dm", c.Name, g.memMi, g.cpum, c.TotalLimitMemoryMi, c.TotalLimitCPUm)
						}
						delete(got, c.Name)
					}
					for name, g := range got {
						t.Errorf("rendered %s (%dMi) is not in the budget", name, g.memMi)
					}
				})
			}
		}
	}
}

// TestLint runs Helm's linter (the SDK's, as `helm lint`) on the embedded
// chart with a plan's values.
func TestLint(t *testing.T) {
	dir := t.TempDir()
	err := fs.WalkDir(crawlctl.Templates, "templates/"+ChartName, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(crawlctl.Templates, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	in := budget.DefaultInput()
	in.GridWorkers, in.Grafana = 1, true
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := Values(Options{Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	lint := action.NewLint()
	lint.Strict = true
	res := lint.Run([]string{filepath.Join(dir, "templates", ChartName)}, vals)
	var msgs bytes.Buffer
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev { // an INFO ("icon is recommended") is advice
			fmt.Fprintln(&msgs, m)
		}
	}
	if len(res.Errors) > 0 || msgs.Len() > 0 {
		t.Fatalf("helm lint: %v\n%s", res.Errors, msgs.String())
	}
}

// TestRenderTakesGoFacts: the chart takes KEDA's trigger, the node ports
// and the scrape interval from Go (stack, deploy), not from its own
// defaults: a trigger unlike the default reaches the ScaledObject, and the
// Services' node ports are stack.NodePorts.
func TestRenderTakesGoFacts(t *testing.T) {
	in := budget.DefaultInput()
	in.GridWorkers = 1
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	trig := stack.Trigger{LagThreshold: 7, MinWorkers: 2, PollInterval: 3 * time.Second, Cooldown: 11 * time.Second}
	manifest, err := Render(Options{Plan: plan, Release: "crawl", Namespace: "crawl", Trigger: trig})
	if err != nil {
		t.Fatal(err)
	}
	nodePorts := map[string]int32{}
	sawWorker, sawProm := false, false
	for _, doc := range strings.Split(manifest, "\n---") {
		switch {
		case strings.Contains(doc, "kind: ScaledObject") && strings.Contains(doc, "name: worker\n"):
			var so scaledObject
			if err := yaml.UnmarshalStrict([]byte(doc), &so); err != nil {
				t.Fatal(err)
			}
			sawWorker = true
			if s := so.Spec; s.MinReplicaCount != 2 || s.PollingInterval != 3 || s.CooldownPeriod != 11 || s.Triggers[0].Metadata["lagThreshold"] != "7" ||
				s.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds != 11 {
				t.Errorf("worker ScaledObject %+v does not carry the trigger %+v", s, trig)
			}
		case strings.Contains(doc, "kind: Service\n"):
			var svc corev1.Service
			if err := yaml.Unmarshal([]byte(doc), &svc); err != nil {
				t.Fatal(err)
			}
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					nodePorts[svc.Name] = p.NodePort
				}
			}
		case strings.Contains(doc, "kind: ConfigMap") && strings.Contains(doc, "prometheus.yml: |"):
			sawProm = true
			if want := "scrape_interval: " + ScrapeInterval.String(); !strings.Contains(doc, want) {
				t.Errorf("Prometheus config lacks %q", want)
			}
		}
	}
	want := map[string]int32{"api": stack.NodePorts.API, "prometheus": stack.NodePorts.Prometheus, "grid": stack.NodePorts.Grid}
	if !sawProm {
		t.Error("no Prometheus ConfigMap rendered")
	}
	if !sawWorker || fmt.Sprint(nodePorts) != fmt.Sprint(want) {
		t.Errorf("node ports %v (worker ScaledObject seen: %v), want %v", nodePorts, sawWorker, want)
	}
}

// TestRenderTimeFactorAndAssignment: --sim-time-factor reaches the
// simulator and scales the workers' pacing the way the local provider does
// (the simulator's per-IP JSON rate times the factor, burst 1), and
// --proxy-assignment reaches the workers; a real target gets no simulator
// and keeps the workers' own pacing.
func TestRenderTimeFactorAndAssignment(t *testing.T) {
	plan, err := budget.Compute(budget.DefaultInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		o      Options
		olsim  map[string]string // nil: no simulator rendered
		worker map[string]string // "": must be absent
	}{
		{"defaults", Options{}, map[string]string{"CRAWLCTL_TIME_FACTOR": "1"},
			map[string]string{"CRAWLCTL_EGRESS_RATE": "3", "CRAWLCTL_EGRESS_BURST": "1", "CRAWLCTL_PROXY_ASSIGNMENT": ""}},
		{"factor 10, hash", Options{SimTimeFactor: 10, ProxyAssignment: "hash"}, map[string]string{"CRAWLCTL_TIME_FACTOR": "10"},
			map[string]string{"CRAWLCTL_EGRESS_RATE": "30", "CRAWLCTL_EGRESS_BURST": "1", "CRAWLCTL_PROXY_ASSIGNMENT": "hash"}},
		{"real target", Options{SimTimeFactor: 10, Target: "https://openlibrary.org"}, nil,
			map[string]string{"CRAWLCTL_EGRESS_RATE": "", "CRAWLCTL_TARGET": "https://openlibrary.org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Plan, o.Release, o.Namespace = plan, "crawl", "crawl"
			manifest, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			envs := map[string]map[string]string{}
			for _, doc := range strings.Split(manifest, "\n---") {
				if !strings.Contains(doc, "kind: Deployment\n") {
					continue
				}
				var d appsv1.Deployment
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatal(err)
				}
				env := map[string]string{}
				for _, e := range d.Spec.Template.Spec.Containers[0].Env {
					env[e.Name] = e.Value
				}
				envs[d.Name] = env
			}
			if _, ok := envs["olsim"]; ok != (tc.olsim != nil) {
				t.Fatalf("simulator rendered: %v, want %v", ok, tc.olsim != nil)
			}
			for comp, want := range map[string]map[string]string{"olsim": tc.olsim, "worker": tc.worker} {
				for k, v := range want {
					if got, ok := envs[comp][k]; got != v || (v == "") == ok {
						t.Errorf("%s env %s = %q (set: %v), want %q", comp, k, got, ok, v)
					}
				}
			}
		})
	}
}
