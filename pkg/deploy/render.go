// Package deploy installs the crawl stack from the charts embedded in the
// binary (templates/), with every size taken from the budget plan. This
// file loads the chart and renders it client-side; nothing here talks to a
// cluster.
package deploy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	crawlctl "github.com/crawlctl/crawlctl"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
	"github.com/crawlctl/crawlctl/pkg/stack"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// ChartName is the embedded chart of the stack.
const ChartName = "crawl"

// ScrapeInterval is how often the chart's Prometheus scrapes the stack.
const ScrapeInterval = 5 * time.Second

// Options are what a render needs besides the chart.
type Options struct {
	Plan      *budget.Plan
	Release   string
	Namespace string
	// Image is the crawlctl runtime image; BrowserImage the browser
	// worker's (the binary on the Playwright image).
	Image, BrowserImage string
	// Target is the crawl target; empty deploys the simulator.
	Target string
	// SimTimeFactor scales the simulator's rate limits and, with them, the
	// workers' pacing (zero: 1). ProxyAssignment is the workers'
	// --proxy-assignment (empty: theirs).
	SimTimeFactor   float64
	ProxyAssignment string
	// GridToken is the grid's token (empty: generated at install, kept
	// across upgrades).
	GridToken string
	// APIToken is the control API's token (empty: generated at install,
	// kept across upgrades; the kube provider reads it back).
	APIToken string
	// Trigger is KEDA's Kafka trigger (zero: stack.DefaultTrigger).
	Trigger stack.Trigger
	// User are the user's own values (UserValues): images, kafka, and
	// anything else crawlctl does not compute.
	User map[string]any
}

// LoadChart reads the embedded chart called name.
func LoadChart(name string) (*chart.Chart, error) {
	root := path.Join("templates", name)
	var files []*loader.BufferedFile
	err := fs.WalkDir(crawlctl.Templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(crawlctl.Templates, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: p[len(root)+1:], Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded chart %s: %w", name, err)
	}
	return loader.LoadFiles(files)
}

// Values are the chart's values for o: every component's size from the
// plan, the topic and group names from pkg/topics.
func Values(o Options) (map[string]any, error) {
	comps := map[string]any{}
	for _, c := range o.Plan.Components {
		if c.Reserved {
			continue // kind's control plane: not deployed by the chart
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		comps[c.Name] = m
	}
	t := o.Trigger
	if t == (stack.Trigger{}) {
		t = stack.DefaultTrigger()
	}
	v := map[string]any{
		"components":     comps,
		"partitions":     o.Plan.Partitions,
		"target":         o.Target,
		"gridToken":      o.GridToken,
		"apiToken":       o.APIToken,
		"scrapeInterval": ScrapeInterval.String(),
		"nodePorts":      map[string]any{"api": stack.NodePorts.API, "prometheus": stack.NodePorts.Prometheus, "grid": stack.NodePorts.Grid},
		"keda": map[string]any{"lagThreshold": t.LagThreshold, "minReplicaCount": t.MinWorkers,
			"pollingInterval": int(t.PollInterval.Seconds()), "cooldownPeriod": int(t.Cooldown.Seconds())},
		"topics": map[string]any{"frontier": topics.Frontier, "edges": topics.Edges},
		"groups": map[string]any{"worker": topics.WorkerGroup, "graphWriter": topics.GraphWriterGroup},
		// where the browser image has playwright-core
		"browserPlaywrightDir": playwright.ImagePrefix,
	}
	// The simulator's per-IP JSON limit, scaled like the simulator, is the
	// workers' pacing rate, as the local provider gives it; a real
	// target keeps the workers' own default.
	sim := olsim.DefaultOptions()
	sim.TimeFactor = cmp.Or(o.SimTimeFactor, 1)
	worker := map[string]any{"proxyAssignment": o.ProxyAssignment, "egressRate": 0.0}
	if o.Target == "" {
		worker["egressRate"] = sim.RuleRate(olsim.JSONRule)
	}
	v["sim"] = map[string]any{"timeFactor": sim.TimeFactor}
	v["worker"] = worker
	if o.Image != "" {
		v["image"] = o.Image
	}
	if o.BrowserImage != "" {
		v["browserImage"] = o.BrowserImage
	}
	return mergeUser(o.User, v)
}

// Render renders the stack's chart for o without a cluster (Helm's
// client-only dry run) and returns the manifest.
func Render(o Options) (string, error) {
	ch, err := LoadChart(ChartName)
	if err != nil {
		return "", err
	}
	vals, err := Values(o)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{})
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = o.Release, o.Namespace
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", fmt.Errorf("rendering the %s chart: %w", ChartName, err)
	}
	return rel.Manifest, nil
}
