package deploy

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// TestTokensAndScraping: the control API and the grid proxy each get
// their token from a Secret (random, or the value given), and serve their
// metrics without it (METRICS_PUBLIC), on the path their scrape annotation
// names, so the in-cluster Prometheus still scrapes them.
func TestTokensAndScraping(t *testing.T) {
	in := budget.DefaultInput()
	in.GridWorkers = 1
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, given := range []string{"", "given-api-token"} {
		manifest, err := Render(Options{Plan: plan, Release: "crawl", Namespace: "crawl", APIToken: given})
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{}
		pods := map[string]corev1.PodTemplateSpec{}
		for _, doc := range strings.Split(manifest, "\n---") {
			switch {
			case strings.Contains(doc, "kind: Secret\n"):
				var s corev1.Secret
				if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
					t.Fatal(err)
				}
				secrets[s.Name] = s.StringData["token"]
			case strings.Contains(doc, "kind: Deployment\n"):
				var d appsv1.Deployment
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatal(err)
				}
				pods[d.Name] = d.Spec.Template
			}
		}
		if tok := secrets["api-token"]; len(tok) != 32 && given == "" || given != "" && tok != given {
			t.Errorf("api-token Secret holds %q, want %s", tok, map[bool]string{true: "32 random characters", false: given}[given == ""])
		}
		if secrets["api-token"] == secrets["grid-token"] {
			t.Errorf("the API and the grid share the token %q", secrets["api-token"])
		}
		for _, c := range []struct{ workload, secret, path string }{
			{"api", "api-token", "/metrics"},
			{"grid-proxy", "grid-token", "/metrics/prometheus"},
		} {
			pod, ok := pods[c.workload]
			if !ok {
				t.Fatalf("no Deployment %s rendered", c.workload)
			}
			if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != c.path {
				t.Errorf("%s is not scraped at %s: %v", c.workload, c.path, a)
			}
			env := map[string]corev1.EnvVar{}
			for _, e := range pod.Spec.Containers[0].Env {
				env[e.Name] = e
			}
			if ref := env["CRAWLCTL_TOKEN"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != c.secret || ref.SecretKeyRef.Key != "token" {
				t.Errorf("%s: CRAWLCTL_TOKEN is %+v, want the Secret %s", c.workload, env["CRAWLCTL_TOKEN"], c.secret)
			}
			if v := env["CRAWLCTL_METRICS_PUBLIC"].Value; v != "true" {
				t.Errorf("%s: CRAWLCTL_METRICS_PUBLIC is %q: Prometheus, which sends no token, could not scrape it", c.workload, v)
			}
		}
	}
}
