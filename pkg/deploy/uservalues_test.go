package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// TestUserValues: files then --set, later ones winning, as helm reads
// them; the images and the Kafka stand-in they name are what renders; a
// value crawlctl computes from the budget is refused.
func TestUserValues(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("images: {redis: a/redis:1, postgres: a/postgres:1}\nkafka: {standIn: false}\n"), 0o644)
	os.WriteFile(b, []byte("images: {redis: b/redis:2}\n"), 0o644)
	user, err := UserValues([]string{a, b}, []string{"kafka.standIn=true", "images.prometheus=s/prom:3"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := budget.Compute(budget.DefaultInput())
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := Render(Options{Plan: plan, Release: "crawl", Namespace: "crawl", Image: "crawlctl:test", User: user})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	var kafkaArgs []string
	for _, doc := range strings.Split(manifest, "\n---") {
		if !strings.Contains(doc, "kind: Deployment\n") && !strings.Contains(doc, "kind: StatefulSet\n") {
			continue
		}
		var w appsv1.Deployment // a StatefulSet's template reads the same
		if err := yaml.Unmarshal([]byte(doc), &w); err != nil {
			t.Fatal(err)
		}
		c := w.Spec.Template.Spec.Containers[0]
		images[w.Name] = c.Image
		if w.Name == "kafka" {
			kafkaArgs = c.Args
		}
	}
	for workload, want := range map[string]string{"redis": "b/redis:2", "graph-db": "a/postgres:1", "prometheus": "s/prom:3",
		"kafka": "crawlctl:test", "kube-state-metrics": "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.16.0"} {
		if images[workload] != want {
			t.Errorf("%s runs %q, want %q", workload, images[workload], want)
		}
	}
	if strings.Join(kafkaArgs, " ") != "run broker" {
		t.Errorf("kafka with kafka.standIn: args %q, want run broker", kafkaArgs)
	}

	for _, bad := range []struct {
		files, set []string
		want       string
	}{
		{set: []string{"components.worker.limitMemoryMi=9999"}, want: `"components" is set by the budget flags`},
		{set: []string{"partitions=99"}, want: "--partitions"},
		{set: []string{"novalue"}, want: "--set novalue"},
		{files: []string{filepath.Join(dir, "missing.yaml")}, want: "--values " + filepath.Join(dir, "missing.yaml")},
	} {
		user, err := UserValues(bad.files, bad.set)
		if err == nil {
			err = CheckUser(user)
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: got %v, want an error with %q", bad.files, bad.set, err, bad.want)
		}
	}
}
