package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
)

// Measure is one run's figures, read from its snapshot's run.json.
type Measure struct {
	Repeat      int     `json:"repeat"`
	Dir         string  `json:"dir"`
	Crawled     int64   `json:"crawled"`
	Retried     int64   `json:"retried"`
	DLQ         int64   `json:"dlq"`
	Drain       float64 `json:"drain_seconds"`
	Limit       float64 `json:"limit_seconds"`
	RateLimited float64 `json:"rate_limited"`
	Requests    float64 `json:"requests"`
	Stuck       int     `json:"stuck_partitions"`
	PeakLag     float64 `json:"peak_lag"`
	PeakWorkers float64 `json:"peak_workers"`
	Proxies     int     `json:"proxies"`
}

// Ratio is the drain time over the physical limit (1.0: as fast as the
// egress allow).
func (m *Measure) Ratio() float64 {
	if m.Limit <= 0 {
		return 0
	}
	return m.Drain / m.Limit
}

// Pct429 is the share of requests answered 429, in percent.
func (m *Measure) Pct429() float64 { return 100 * m.RateLimited / max(m.Requests, 1) }

// readRun reads a snapshot's run.json; an error when it is missing or not
// whole.
func readRun(dir string) (*Measure, error) {
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, err
	}
	var meta struct {
		Run struct {
			Counters struct {
				Crawled int64 `json:"crawled"`
				Retried int64 `json:"retried"`
				DLQ     int64 `json:"dlq"`
			} `json:"counters"`
		} `json:"run"`
		Settings *struct {
			Proxies int `json:"proxies"`
		} `json:"settings"`
		Summary struct {
			DrainSeconds float64            `json:"drain_seconds"`
			Stuck        []json.RawMessage  `json:"stuck_partitions"`
			RateLimited  map[string]float64 `json:"rate_limited_by_egress"`
			Requests     map[string]float64 `json:"requests_by_egress"`
			PeakLag      float64            `json:"peak_lag"`
			PeakWorkers  float64            `json:"peak_workers"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "run.json"), err)
	}
	if meta.Summary.DrainSeconds <= 0 {
		return nil, fmt.Errorf("%s: the run had not drained", dir)
	}
	s := meta.Summary
	m := &Measure{Dir: dir, Crawled: meta.Run.Counters.Crawled, Retried: meta.Run.Counters.Retried, DLQ: meta.Run.Counters.DLQ,
		Drain: s.DrainSeconds, Stuck: len(s.Stuck), PeakLag: s.PeakLag, PeakWorkers: s.PeakWorkers}
	for e, n := range s.Requests {
		m.Requests += n
		m.RateLimited += s.RateLimited[e]
	}
	if meta.Settings != nil {
		m.Proxies = meta.Settings.Proxies
	}
	m.Repeat, _ = strconv.Atoi(filepath.Base(dir))
	return m, nil
}

// Stat is the spread of one figure over a scenario's runs.
type Stat struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func spread(ms []*Measure, f func(*Measure) float64) Stat {
	vs := make([]float64, len(ms))
	for i, m := range ms {
		vs[i] = f(m)
	}
	slices.Sort(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return Stat{Min: vs[0], Median: med, Max: vs[len(vs)-1]}
}

// Row is one scenario's figures over its runs.
type Row struct {
	Scenario string            `json:"scenario"`
	Settings map[string]string `json:"settings"`
	Runs     []*Measure        `json:"runs"`
	Drain    Stat              `json:"drain_seconds"`
	Limit    Stat              `json:"limit_seconds"`
	Ratio    Stat              `json:"drain_over_limit"`
	Pct429   Stat              `json:"rate_limited_percent"`
	Retries  Stat              `json:"retries"`
	DLQ      Stat              `json:"dlq"`
	Stuck    Stat              `json:"stuck_partitions"`
	PeakLag  Stat              `json:"peak_lag"`
	Workers  Stat              `json:"peak_workers"`
	// Median is the run whose drain time is the median's (the picture's).
	Median *Measure `json:"-"`
}

// Report compares an experiment's scenarios (report.json).
type Report struct {
	Name    string `json:"name"`
	Dir     string `json:"dir"`
	Seeds   int    `json:"seeds"`
	Repeats int    `json:"repeats"`
	// Differs names the settings whose values differ between scenarios.
	Differs []string `json:"settings_that_differ"`
	Rows    []Row    `json:"scenarios"`
}

// settings are a scenario's `up` settings as the report shows them.
func (f *File) settings(sc Scenario) map[string]string {
	p := sc.plan
	return map[string]string{
		"proxies": strconv.Itoa(p.Proxies), "proxyAssignment": sc.ProxyAssignment, "partitions": strconv.Itoa(p.Partitions),
		"graphWriters": strconv.Itoa(p.GraphWriters), "maxWorkers": strconv.Itoa(min(p.MaxWorkers, p.Partitions)),
		"nodeMemory": fmt.Sprintf("%dMi", p.NodeMemoryMi), "nodeCPU": fmt.Sprintf("%dm", p.NodeCPUm),
		"profile": string(p.Profile), "simTimeFactor": strconv.FormatFloat(f.timeFactor(sc), 'g', -1, 64),
	}
}

// limit is the physical limit of a run that crawled n URLs: every egress
// at the simulator's per-IP JSON rate, scaled by the time factor.
func (f *File) limit(sc Scenario, crawled int64) float64 {
	o := olsim.DefaultOptions()
	o.TimeFactor = f.timeFactor(sc)
	return float64(crawled) / (float64(sc.plan.Proxies) * o.RuleRate(olsim.JSONRule))
}

// BuildReport reads every run of f in dir; a run not yet complete is an
// error naming it.
func BuildReport(dir string, f *File) (*Report, error) {
	rep := &Report{Name: f.Name, Dir: dir, Seeds: len(f.seeds), Repeats: f.Repeats}
	all := map[string]map[string]bool{}
	for _, sc := range f.Scenarios {
		row := Row{Scenario: sc.Name, Settings: f.settings(sc)}
		for repeat := 1; repeat <= f.Repeats; repeat++ {
			m, err := readRun(filepath.Join(dir, sc.Name, strconv.Itoa(repeat)))
			if err != nil {
				return nil, fmt.Errorf("scenario %s run %d is not complete (%w): run the experiment to finish it", sc.Name, repeat, err)
			}
			m.Limit = f.limit(sc, m.Crawled)
			row.Runs = append(row.Runs, m)
		}
		ms := row.Runs
		row.Drain = spread(ms, func(m *Measure) float64 { return m.Drain })
		row.Limit = spread(ms, func(m *Measure) float64 { return m.Limit })
		row.Ratio = spread(ms, (*Measure).Ratio)
		row.Pct429 = spread(ms, (*Measure).Pct429)
		row.Retries = spread(ms, func(m *Measure) float64 { return float64(m.Retried) })
		row.DLQ = spread(ms, func(m *Measure) float64 { return float64(m.DLQ) })
		row.Stuck = spread(ms, func(m *Measure) float64 { return float64(m.Stuck) })
		row.PeakLag = spread(ms, func(m *Measure) float64 { return m.PeakLag })
		row.Workers = spread(ms, func(m *Measure) float64 { return m.PeakWorkers })
		byDrain := slices.Clone(ms)
		slices.SortFunc(byDrain, func(a, b *Measure) int { return int(a.Drain*1000 - b.Drain*1000) })
		row.Median = byDrain[(len(byDrain)-1)/2]
		for k, v := range row.Settings {
			if all[k] == nil {
				all[k] = map[string]bool{}
			}
			all[k][v] = true
		}
		rep.Rows = append(rep.Rows, row)
	}
	for k, vs := range all {
		if len(vs) > 1 {
			rep.Differs = append(rep.Differs, k)
		}
	}
	slices.Sort(rep.Differs)
	return rep, nil
}

// WriteReport builds the report of f's runs in dir and writes report.md,
// report.json and comparison.png there.
func WriteReport(dir string, f *File) (*Report, error) {
	rep, err := BuildReport(dir, f)
	if err != nil {
		return nil, err
	}
	if err := writeComparison(filepath.Join(dir, "comparison.png"), rep); err != nil {
		return nil, fmt.Errorf("drawing comparison.png: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, "report.json"), rep); err != nil {
		return nil, err
	}
	return rep, os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.Markdown(f)), 0o644)
}

func (s Stat) format(unit string, prec int) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) + unit }
	if f(s.Min) == f(s.Max) {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}

// Markdown is report.md.
func (r *Report) Markdown(f *File) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Experiment %s\n\n", r.Name)
	fmt.Fprintf(&b, "%d seeds, max depth %d, %d runs per scenario; each figure is the median (min–max) of the runs. "+
		"The physical limit is the URLs crawled over what the egress may fetch: every proxy at the simulator's per-IP JSON "+
		"rate (3 req/s) times the time factor.\n\n", r.Seeds, *f.MaxDepth, r.Repeats)
	b.WriteString("| scenario | drain | physical limit | drain / limit | 429s | retries | DLQ | stuck partitions | peak lag | peak workers |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Scenario,
			row.Drain.format(" s", 1), row.Limit.format(" s", 1), row.Ratio.format("×", 2), row.Pct429.format("%", 2),
			row.Retries.format("", 0), row.DLQ.format("", 0), row.Stuck.format("", 0), row.PeakLag.format("", 0), row.Workers.format("", 0))
	}
	if len(r.Differs) > 0 {
		b.WriteString("\nSettings that differ between the scenarios:\n\n| scenario | " + strings.Join(r.Differs, " | ") + " |\n|---|")
		b.WriteString(strings.Repeat("---|", len(r.Differs)) + "\n")
		for _, row := range r.Rows {
			vals := make([]string, len(r.Differs))
			for i, k := range r.Differs {
				vals[i] = row.Settings[k]
			}
			fmt.Fprintf(&b, "| %s | %s |\n", row.Scenario, strings.Join(vals, " | "))
		}
	}
	b.WriteString("\n![Total frontier lag over time per scenario (median run), and drain time per scenario with min–max whiskers](comparison.png)\n\n")
	b.WriteString("Runs (each folder holds csv_data/, screenshots/overview.png, run.json and summary.md):\n\n")
	for _, row := range r.Rows {
		var links []string
		for _, m := range row.Runs {
			links = append(links, fmt.Sprintf("[%d](%s/%d/summary.md) %.0f s", m.Repeat, row.Scenario, m.Repeat, m.Drain))
		}
		fmt.Fprintf(&b, "- %s: %s\n", row.Scenario, strings.Join(links, ", "))
	}
	return b.String()
}
