// Package experiment runs a matrix of scenarios, each repeated, through a
// provider (up, seed, collect until drained, down) and compares them in
// one report. file.go reads and checks the experiment file, run.go runs
// it, report.go and plot.go compare the runs, list.go lists past ones.
package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
)

// File is an experiment as its YAML file declares it.
type File struct {
	// Name is the folder under the output root.
	Name string `yaml:"name" json:"name"`
	// Seeds takes the first N built-in seeds; SeedFile reads them from a
	// file (relative to the experiment file) instead.
	Seeds    int    `yaml:"seeds" json:"seeds,omitempty"`
	SeedFile string `yaml:"seedFile" json:"seedFile,omitempty"`
	// MaxDepth is how many links deep each run crawls (default
	// api.DefaultMaxDepth).
	MaxDepth *int `yaml:"maxDepth" json:"maxDepth"`
	// SimTimeFactor scales the simulator's limits for every scenario
	// (default 1; a scenario may set its own).
	SimTimeFactor float64 `yaml:"simTimeFactor" json:"simTimeFactor"`
	// Repeats is how many times each scenario runs (default 3).
	Repeats int `yaml:"repeats" json:"repeats"`
	// ScrapeInterval is how often the stack's metrics store scrapes
	// (default the stack's, 5s).
	ScrapeInterval Duration `yaml:"scrapeInterval" json:"scrapeInterval,omitempty"`
	// StuckAfter is how long a partition's lag stays flat to count as
	// stuck (default 1m scaled by the time factor).
	StuckAfter Duration   `yaml:"stuckAfter" json:"stuckAfter,omitempty"`
	Scenarios  []Scenario `yaml:"scenarios" json:"scenarios"`

	seeds []string
}

// Scenario is one column of the comparison: a name plus `up` settings
// over the configured budget.
type Scenario struct {
	Name            string  `yaml:"name" json:"name"`
	Proxies         int     `yaml:"proxies" json:"proxies,omitempty"`
	ProxyAssignment string  `yaml:"proxyAssignment" json:"proxyAssignment,omitempty"`
	Partitions      int     `yaml:"partitions" json:"partitions,omitempty"`
	GraphWriters    int     `yaml:"graphWriters" json:"graphWriters,omitempty"`
	NodeMemory      string  `yaml:"nodeMemory" json:"nodeMemory,omitempty"`
	NodeCPU         string  `yaml:"nodeCPU" json:"nodeCPU,omitempty"`
	Profile         string  `yaml:"profile" json:"profile,omitempty"`
	SimTimeFactor   float64 `yaml:"simTimeFactor" json:"simTimeFactor,omitempty"`

	plan *budget.Plan
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "5s", "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a positive duration such as 5s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON reads "5s" (experiment.json).
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MarshalJSON writes it as "5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Defaults of a file.
const (
	DefaultRepeats = 3
	// maxRepeats bounds a file's repeats.
	maxRepeats = 100
)

var folderName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// Parse reads and checks the experiment at path: unknown keys and bad
// values are errors naming the line; every scenario's plan is computed on
// base (the configured budget) before anything starts.
func Parse(path string, base budget.Input) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	lines := lines(&root)
	bad := func(key string, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s: %s", path, lines[key], key, fmt.Sprintf(format, args...))
	}
	if !folderName.MatchString(f.Name) {
		return nil, bad("name", "%q: give a folder name of lowercase letters, digits, - and _ (at most 48)", f.Name)
	}
	if f.Repeats == 0 {
		f.Repeats = DefaultRepeats
	}
	if f.Repeats < 1 || f.Repeats > maxRepeats {
		return nil, bad("repeats", "%d: give 1 to %d", f.Repeats, maxRepeats)
	}
	if f.MaxDepth == nil {
		d := api.DefaultMaxDepth
		f.MaxDepth = &d
	} else if *f.MaxDepth < 0 || *f.MaxDepth > api.MaxDepthLimit {
		return nil, bad("maxDepth", "%d: give 0 to %d", *f.MaxDepth, api.MaxDepthLimit)
	}
	if f.SimTimeFactor == 0 {
		f.SimTimeFactor = 1
	}
	if f.SimTimeFactor < 0 {
		return nil, bad("simTimeFactor", "%v: give a factor above 0", f.SimTimeFactor)
	}
	switch {
	case f.SeedFile != "" && f.Seeds != 0:
		return nil, bad("seedFile", "give seeds or seedFile, not both")
	case f.SeedFile != "":
		sf := f.SeedFile
		if !filepath.IsAbs(sf) {
			sf = filepath.Join(filepath.Dir(path), sf)
		}
		if f.seeds, err = api.ReadSeedFile(sf); err != nil {
			return nil, bad("seedFile", "%v", err)
		}
	case f.Seeds < 1 || f.Seeds > len(openlibrary.Seeds):
		return nil, bad("seeds", "%d: give 1 to %d (the built-in seeds), or a seedFile", f.Seeds, len(openlibrary.Seeds))
	default:
		f.seeds = openlibrary.Seeds[:f.Seeds]
	}
	if len(f.Scenarios) == 0 {
		return nil, bad("scenarios", "none: give at least one, e.g. - {name: three_egress, proxies: 3}")
	}
	seen := map[string]bool{}
	for i := range f.Scenarios {
		sc := &f.Scenarios[i]
		at := fmt.Sprintf("%s:%d: scenario %q", path, lines[fmt.Sprintf("scenarios.%d", i)], sc.Name)
		if err := sc.check(base); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if seen[sc.Name] {
			return nil, fmt.Errorf("%s: the name is taken by an earlier scenario", at)
		}
		seen[sc.Name] = true
	}
	return &f, nil
}

// check validates the scenario and computes its plan on base.
func (sc *Scenario) check(base budget.Input) error {
	if !folderName.MatchString(sc.Name) {
		return fmt.Errorf("name %q: give a folder name of lowercase letters, digits, - and _", sc.Name)
	}
	if sc.ProxyAssignment == "" {
		sc.ProxyAssignment = string(egress.AssignPace)
	}
	if err := egress.Assignment(sc.ProxyAssignment).Validate(); err != nil {
		return fmt.Errorf("proxyAssignment: %w", err)
	}
	if sc.SimTimeFactor < 0 {
		return errors.New("simTimeFactor: give a factor above 0")
	}
	in := base
	for _, o := range []struct {
		v   int
		dst *int
		key string
	}{{sc.Proxies, &in.Proxies, "proxies"}, {sc.Partitions, &in.Partitions, "partitions"}, {sc.GraphWriters, &in.GraphWriters, "graphWriters"}} {
		if o.v < 0 {
			return fmt.Errorf("%s %d: give a positive number", o.key, o.v)
		}
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if sc.NodeMemory != "" {
		in.NodeMemory = sc.NodeMemory
	}
	if sc.NodeCPU != "" {
		in.NodeCPU = sc.NodeCPU
	}
	if sc.Profile != "" {
		in.Profile = budget.Profile(sc.Profile)
	}
	plan, err := budget.Compute(in)
	if err != nil {
		return fmt.Errorf("does not fit the budget: %w", err)
	}
	sc.plan = plan
	return nil
}

// lines maps the file's top-level keys, and each scenario as
// "scenarios.N", to their line.
func lines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		out[k.Value] = k.Line
		if k.Value == "scenarios" {
			for j, item := range v.Content {
				out[fmt.Sprintf("scenarios.%d", j)] = item.Line
			}
		}
	}
	return out
}

// timeFactor is the scenario's simulator time factor.
func (f *File) timeFactor(sc Scenario) float64 {
	if sc.SimTimeFactor > 0 {
		return sc.SimTimeFactor
	}
	return f.SimTimeFactor
}

// runs is the number of runs the file asks for.
func (f *File) runs() int { return f.Repeats * len(f.Scenarios) }
