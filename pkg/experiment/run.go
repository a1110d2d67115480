package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/collect"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/stack"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

// Options say where and how to run an experiment.
type Options struct {
	// Out is the root folder: the experiment goes in Out/<name>/.
	Out string
	// Provider is local or kind.
	Provider string
	// Force runs again the runs already complete.
	Force bool
	// Print gets one line per run (nil: quiet).
	Print stack.Printer
	Log   *slog.Logger
}

// DefaultOptions: raw_data/metrics, the local provider.
func DefaultOptions() Options {
	return Options{Out: filepath.Join("raw_data", "metrics"), Provider: stack.Local}
}

// specFile is the experiment file as run, kept in its folder (list reads
// it).
const specFile = "experiment.json"

// downTimeout bounds taking a run's stack down, also after an interrupt.
const downTimeout = 2 * time.Minute

// Run runs every scenario f.Repeats times, skipping runs already complete
// (unless o.Force), then writes the report. A cancelled ctx (Ctrl-C) stops
// the current run's stack and leaves the finished runs in place; running
// the file again resumes.
func Run(ctx context.Context, f *File, o Options) (*Report, error) {
	dir := filepath.Join(o.Out, f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, specFile), f); err != nil {
		return nil, err
	}
	r := &runner{f: f, o: o, dir: dir, stackName: stackName(f.Name)}
	total, start := f.runs(), time.Now()
	done, ran := 0, 0
	var spent time.Duration
	for _, sc := range f.Scenarios {
		for repeat := 1; repeat <= f.Repeats; repeat++ {
			done++
			at := fmt.Sprintf("[%d/%d] %s #%d", done, total, sc.Name, repeat)
			if !o.Force && complete(r.runDir(sc, repeat)) {
				o.Print.Print("✓ %s: complete already, skipped (--force runs it again)", at)
				continue
			}
			t0 := time.Now()
			m, err := r.once(ctx, sc, repeat)
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("%s interrupted: the %d runs before it are in %s; run the file again to resume", at, done-1, dir)
				}
				o.Print.Print("✗ %s (%s)", at, stack.FormatDuration(time.Since(t0)))
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			ran++
			spent += time.Since(t0)
			eta := "done"
			if left := time.Duration(int64(spent) / int64(ran) * int64(total-done)); left > 0 {
				eta = "about " + stack.FormatDuration(left) + " left"
			}
			o.Print.Print("✓ %s: drained in %.0f s, %.2f× the limit (%s); elapsed %s, %s", at, m.Drain, m.Ratio(),
				stack.FormatDuration(time.Since(t0)), stack.FormatDuration(time.Since(start)), eta)
		}
	}
	return WriteReport(dir, f)
}

// stackName is the stack an experiment runs on: a DNS label.
func stackName(name string) string {
	s := "exp-" + strings.ReplaceAll(name, "_", "-")
	return strings.TrimRight(s[:min(len(s), 63)], "-")
}

type runner struct {
	f         *File
	o         Options
	dir       string
	stackName string
}

func (r *runner) runDir(sc Scenario, repeat int) string {
	return filepath.Join(r.dir, sc.Name, strconv.Itoa(repeat))
}

// complete reports whether a run's snapshot is whole: collect writes
// run.json last.
func complete(dir string) bool {
	_, err := readRun(dir)
	return err == nil
}

// once is one run: a fresh stack up with the scenario's settings, the
// seeds, collect until drained, down.
func (r *runner) once(ctx context.Context, sc Scenario, repeat int) (_ *Measure, err error) {
	p, err := cluster.New(r.stackName, cluster.WithProvider(r.o.Provider), cluster.WithLogger(r.o.Log))
	if err != nil {
		return nil, err
	}
	down := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), downTimeout)
		defer cancel()
		_, err := p.Down(dctx, stack.DownOptions{Purge: true})
		return err
	}
	if err := down(); err != nil { // a stack an interrupted run left
		return nil, fmt.Errorf("taking down what an earlier run left: %w", err)
	}
	defer func() { err = errors.Join(err, down()) }()
	uo := stack.DefaultUpOptions()
	uo.SimTimeFactor, uo.ProxyAssignment = r.f.timeFactor(sc), sc.ProxyAssignment
	if r.f.ScrapeInterval > 0 {
		uo.ScrapeInterval = time.Duration(r.f.ScrapeInterval)
	}
	if _, err := p.Up(ctx, sc.plan, uo); err != nil {
		return nil, err
	}
	acc, err := p.Access(ctx)
	if err != nil {
		return nil, err
	}
	run, err := api.CreateRun(ctx, acc.Endpoints.API, acc.APIToken, api.RunRequest{Name: fmt.Sprintf("%s.%d", sc.Name, repeat), Seeds: r.f.seeds, MaxDepth: r.f.MaxDepth})
	if err != nil {
		return nil, err
	}
	sdir, err := stack.Dir(r.stackName)
	if err != nil {
		return nil, err
	}
	tl, err := timeline.Read(sdir)
	if err != nil {
		return nil, err
	}
	stuck := time.Duration(r.f.StuckAfter)
	if stuck == 0 {
		stuck = time.Duration(float64(time.Minute) / uo.SimTimeFactor)
	}
	res, err := collect.UntilDrained(ctx, collect.Options{Prometheus: acc.Endpoints.Prometheus, API: acc.Endpoints.API, APIToken: acc.APIToken, RunID: run.ID,
		Out: r.dir, Scenario: sc.Name, Name: strconv.Itoa(repeat), StuckAfter: stuck, Timeline: tl}, acc.ScrapeInterval, func(collect.Progress) {})
	if err != nil {
		return nil, err
	}
	m, err := readRun(res.Dir)
	if err != nil {
		return nil, err
	}
	m.Limit = r.f.limit(sc, m.Crawled)
	return m, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
