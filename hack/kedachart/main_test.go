package main

import (
	"os"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestAssemble: KEDA's manifests become a chart that Helm installs with the
// values crawlctl gives KEDA's official chart: CRDs under crds/, no
// Namespace, each Deployment running its binary from the image its values
// name, sized by its resources value.
func TestAssemble(t *testing.T) {
	b, err := os.ReadFile("testdata/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Assemble(b, "2.17.0", "crawlctl/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.CRDObjects()) != 1 || !strings.Contains(string(ch.CRDObjects()[0].File.Data), "version: 2.17.0") {
		t.Errorf("CRDs %v: want the one, relabelled with the version", ch.CRDObjects())
	}
	install := action.NewInstall(&action.Configuration{})
	install.ClientOnly, install.DryRun, install.Replace, install.ReleaseName, install.Namespace = true, true, true, "keda", "keda"
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	rel, err := install.Run(ch, map[string]any{"resources": map[string]any{
		"operator": map[string]any{"limits": map[string]any{"memory": "128Mi"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rel.Manifest, "kind: Namespace") {
		t.Error("the chart creates the Namespace (helm's --create-namespace does)")
	}
	want := map[string]struct{ image, command, firstArg string }{
		"keda-operator":          {"crawlctl/keda:2.17.0", "/keda", "--leader-elect"},
		"keda-metrics-apiserver": {"crawlctl/keda-metrics-apiserver:2.17.0", "/keda-adapter", "--secure-port=6443"},
		"keda-admission":         {"crawlctl/keda-admission-webhooks:2.17.0", "/keda-admission-webhooks", ""},
	}
	for _, doc := range strings.Split(rel.Manifest, "\n---") {
		if !strings.Contains(doc, "kind: Deployment") {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		c, w := d.Spec.Template.Spec.Containers[0], want[d.Name]
		first := ""
		if len(c.Args) > 0 {
			first = c.Args[0]
		}
		if c.Image != w.image || strings.Join(c.Command, " ") != w.command || first != w.firstArg || c.ImagePullPolicy != "IfNotPresent" {
			t.Errorf("%s: image %s, command %v, args %v, pull %s; want %+v", d.Name, c.Image, c.Command, c.Args, c.ImagePullPolicy, w)
		}
		if mem := c.Resources.Limits.Memory().String(); d.Name == "keda-operator" && mem != "128Mi" {
			t.Errorf("the operator's memory limit is %s, want the value's 128Mi", mem)
		}
		delete(want, d.Name)
	}
	if len(want) > 0 {
		t.Errorf("not rendered: %v", want)
	}
}
