// Command kedachart assembles a Helm chart repository for KEDA from the
// manifests of its own Go module (config/default, rendered by `kubectl
// kustomize`), for a machine with no registry and no chart repository:
// scripts/kind-offline.sh runs it, and `crawlctl up --keda-repo DIR` serves
// the result on loopback and installs it as it installs KEDA's official
// chart. Nothing of KEDA is committed: the manifests are read at build time.
// The chart takes the official chart's values crawlctl sets
// (resources.{operator,metricServer,webhooks}) and image.{keda,
// metricsApiServer,webhooks}.{repository,tag}.
//
//	kubectl kustomize $(go env GOMODCACHE)/github.com/kedacore/keda/v2@v2.17.0/config/default >keda.yaml
//	kedachart -manifests keda.yaml -version 2.17.0 -image-prefix crawlctl/ -o repo/
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// deployments are KEDA's three, by name: the binary each runs and the
// value keys of its image and resources.
var deployments = map[string]struct{ command, image, resources string }{
	"keda-operator":          {"/keda", "keda", "operator"},
	"keda-metrics-apiserver": {"/keda-adapter", "metricsApiServer", "metricServer"},
	"keda-admission":         {"/keda-admission-webhooks", "webhooks", "webhooks"},
}

func main() {
	manifests := flag.String("manifests", "", "KEDA's rendered config/default")
	version := flag.String("version", "", "KEDA's version, e.g. 2.17.0")
	prefix := flag.String("image-prefix", "crawlctl/", "images are <prefix>keda, <prefix>keda-metrics-apiserver, <prefix>keda-admission-webhooks, tagged version")
	out := flag.String("o", "", "repository directory to write (chart .tgz and index.yaml)")
	flag.Parse()
	if *manifests == "" || *version == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: kedachart -manifests keda.yaml -version 2.17.0 [-image-prefix crawlctl/] -o DIR")
		os.Exit(2)
	}
	if err := run(*manifests, *version, *prefix, *out); err != nil {
		fmt.Fprintln(os.Stderr, "kedachart:", err)
		os.Exit(1)
	}
}

func run(manifests, version, prefix, out string) error {
	b, err := os.ReadFile(manifests)
	if err != nil {
		return err
	}
	ch, err := Assemble(b, version, prefix)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if _, err := chartutil.Save(ch, out); err != nil {
		return err
	}
	idx, err := repo.IndexDirectory(out, "")
	if err != nil {
		return err
	}
	idx.SortEntries()
	return idx.WriteFile(filepath.Join(out, "index.yaml"), 0o644)
}

// Assemble turns KEDA's manifests into a chart: CRDs under crds/, the
// Namespace left to Helm, every other object a template, the three
// Deployments with templated images and resources.
func Assemble(manifests []byte, version, prefix string) (*chart.Chart, error) {
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "keda", Version: version, AppVersion: version, Type: "application",
			Description: "KEDA " + version + " assembled from its Go module's config/default (hack/kedachart), with images built from its source"},
		Values: map[string]any{
			"image": map[string]any{
				"keda":             map[string]any{"repository": prefix + "keda", "tag": version},
				"metricsApiServer": map[string]any{"repository": prefix + "keda-metrics-apiserver", "tag": version},
				"webhooks":         map[string]any{"repository": prefix + "keda-admission-webhooks", "tag": version},
			},
			"resources": map[string]any{"operator": map[string]any{}, "metricServer": map[string]any{}, "webhooks": map[string]any{}},
		},
	}
	vals, err := yaml.Marshal(ch.Values)
	if err != nil {
		return nil, err
	}
	ch.Raw = []*chart.File{{Name: chartutil.ValuesfileName, Data: vals}} // what Save writes as values.yaml
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	seen := map[string]bool{}
	for i := 0; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("object %d: %w", i+1, err)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		relabel(obj, version)
		switch kind {
		case "Namespace":
			continue // helm install --create-namespace
		case "CustomResourceDefinition":
			y, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			ch.Files = append(ch.Files, &chart.File{Name: "crds/" + name + ".yaml", Data: y})
			continue
		case "Deployment":
			d, ok := deployments[name]
			if !ok {
				return nil, fmt.Errorf("unknown Deployment %q in KEDA's manifests", name)
			}
			if err := templateDeployment(obj, d.command, d.image, d.resources); err != nil {
				return nil, fmt.Errorf("Deployment %s: %w", name, err)
			}
			seen[name] = true
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		t := string(y)
		for _, d := range deployments {
			t = strings.ReplaceAll(t, "__image_"+d.image+"__", fmt.Sprintf(`"{{ .Values.image.%[1]s.repository }}:{{ .Values.image.%[1]s.tag }}"`, d.image))
			t = strings.ReplaceAll(t, "__resources_"+d.resources+"__", fmt.Sprintf("{{ toJson .Values.resources.%s }}", d.resources))
		}
		ch.Templates = append(ch.Templates, &chart.File{Name: fmt.Sprintf("templates/%02d-%s-%s.yaml", i, strings.ToLower(kind), name), Data: []byte(t)})
	}
	for name := range deployments {
		if !seen[name] {
			return nil, fmt.Errorf("KEDA's manifests have no Deployment %s", name)
		}
	}
	return ch, nil
}

// templateDeployment sets the Deployment's binary and leaves its image and
// resources to the chart's values.
func templateDeployment(obj map[string]any, command, image, resources string) error {
	cs, err := containers(obj)
	if err != nil {
		return err
	}
	c := cs[0].(map[string]any)
	c["command"] = []any{command}
	c["image"] = "__image_" + image + "__"
	c["imagePullPolicy"] = "IfNotPresent"
	c["resources"] = "__resources_" + resources + "__"
	if args, ok := c["args"].([]any); ok && len(args) > 0 && strings.HasPrefix(fmt.Sprint(args[0]), "/") {
		c["args"] = args[1:] // a path left in place of a command (the metrics server's)
	}
	return nil
}

func containers(obj map[string]any) ([]any, error) {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	cs, _ := pod["containers"].([]any)
	if len(cs) != 1 {
		return nil, fmt.Errorf("%d containers, want 1", len(cs))
	}
	return cs, nil
}

// relabel puts the version in place of kustomize's "main".
func relabel(v any, version string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if k == "app.kubernetes.io/version" {
				t[k] = version
				continue
			}
			relabel(x, version)
		}
	case []any:
		for _, x := range t {
			relabel(x, version)
		}
	}
}
