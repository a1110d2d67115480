package collect

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	egresspool "github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/timeline"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Options say what to collect and where.
type Options struct {
	Prometheus string // Prometheus HTTP API base URL
	API        string // control API base URL
	APIToken   string // the control API's token (empty: none)
	RunID      string // empty: the newest run
	Out        string // root folder (raw_data/metrics)
	Scenario   string // empty: worker_autoscaler_egress_proxy
	Name       string // empty: <seeds>_seed_<egress>_proxies
	Step       time.Duration
	RateWindow time.Duration
	// RunsDir, for a stack that is no longer up, is where its runs were
	// recorded (runstate.SaveRun): the run comes from there and its
	// counters from the metrics (ArchivedRun), not from the control API.
	RunsDir string
	// StuckAfter is how long a partition's lag must stay flat and non-zero
	// to count as stuck (1m).
	StuckAfter time.Duration
	// Timeline is the stack's recorded settings (timeline.Read): the run is
	// named after the settings in force when it drained, and run.json lists
	// every change during it. Without one the folder counts the egress
	// labels the fetches carry.
	Timeline []timeline.Entry
}

// Result is where the snapshot went and what it says.
type Result struct {
	Dir     string  `json:"dir"`
	Summary Summary `json:"summary"`
}

// DefaultScenario is the seed document's folder name.
const DefaultScenario = "worker_autoscaler_egress_proxy"

// Collect writes raw_data/metrics/<scenario>/<name>/ for a run.
func Collect(ctx context.Context, o Options) (*Result, error) {
	if o.Step <= 0 {
		o.Step = 5 * time.Second
	}
	if o.RateWindow <= 0 {
		o.RateWindow = 30 * time.Second
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = time.Minute
	}
	if o.Out == "" {
		o.Out = filepath.Join("raw_data", "metrics")
	}
	if o.Scenario == "" {
		o.Scenario = DefaultScenario
	}
	q, err := NewQuerier(o.Prometheus)
	if err != nil {
		return nil, err
	}
	var run *runstate.Run
	if o.RunsDir != "" {
		run, err = ArchivedRun(ctx, q, o.RunsDir, o.RunID)
	} else {
		run, err = FetchRun(ctx, o.API, o.APIToken, o.RunID)
	}
	if err != nil {
		return nil, err
	}
	start := run.CreatedAt.Add(-o.Step).Truncate(time.Second)
	end := time.Now()
	if !run.DrainedAt.IsZero() {
		end = run.DrainedAt.Add(2 * o.RateWindow)
	}
	if end.Sub(start)/o.Step > 10000 {
		o.Step = end.Sub(start) / 10000
	}
	var panels []*PanelData
	for _, p := range Panels {
		d, err := q.Range(ctx, p, start, end, o.Step, o.RateWindow)
		if err != nil {
			return nil, err
		}
		panels = append(panels, d)
	}
	egress, err := q.Instant(ctx, fmt.Sprintf(`sum by (egress) (increase(crawl_worker_rate_limited_total[%ds]))`, int(end.Sub(start).Seconds())+1), "egress", end)
	if err != nil {
		return nil, err
	}
	fetches, err := q.Instant(ctx, fmt.Sprintf(`sum by (egress) (increase(crawl_worker_fetches_total[%ds]))`, int(end.Sub(start).Seconds())+1), "egress", end)
	if err != nil {
		return nil, err
	}
	runEnd := end
	if !run.DrainedAt.IsZero() {
		runEnd = run.DrainedAt
	}
	during := timeline.During(o.Timeline, run.CreatedAt, runEnd)
	var settings *timeline.Entry
	if len(during) > 0 {
		settings = &during[len(during)-1]
	}
	if o.Name == "" {
		o.Name = fmt.Sprintf("%d_seed_%d_proxies", len(run.Seeds), proxiesAtEnd(settings, fetches))
	}
	dir := filepath.Join(o.Out, o.Scenario, o.Name)
	for _, sub := range []string{"csv_data", "screenshots"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range panels {
		if err := writeCSV(filepath.Join(dir, "csv_data", d.File+".csv"), d); err != nil {
			return nil, err
		}
	}
	if err := writeOverview(filepath.Join(dir, "screenshots", "overview.png"), panels, start, end); err != nil {
		return nil, err
	}
	sum := summarize(run, panels, egress, fetches, o.StuckAfter)
	sum.Timeline = during
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(sum.Markdown(run)), 0o644); err != nil {
		return nil, err
	}
	meta := map[string]any{
		"run": run, "settings": settings, "timeline": during, "prometheus": o.Prometheus, "api": o.API, "source": source(o),
		"window":  map[string]any{"start": start, "end": end, "step": o.Step.String(), "rate_window": o.RateWindow.String()},
		"summary": sum,
	}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return &Result{Dir: dir, Summary: sum}, nil
}

// source says where the run's counters came from.
func source(o Options) string {
	if o.RunsDir != "" {
		return "the metrics the stack left on disk (it is not up): counters as last scraped, drained_at within one scrape interval"
	}
	return "the control API"
}

// proxiesAtEnd is the number of proxies in force when the run ended, or
// without a recorded timeline the number of egress proxies fetches went
// through.
func proxiesAtEnd(settings *timeline.Entry, fetches map[string]float64) int {
	if settings != nil {
		return settings.Proxies
	}
	n := 0
	for e, v := range fetches {
		if e != egresspool.None && e != "" && v > 0 {
			n++
		}
	}
	return max(1, n)
}

// writeCSV writes a time column and one column per series.
func writeCSV(path string, d *PanelData) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"time"}
	for _, s := range d.Series {
		head = append(head, s.Name)
	}
	w.Write(head)
	for _, t := range d.Times {
		row := []string{time.Unix(t, 0).UTC().Format(time.RFC3339)}
		for _, s := range d.Series {
			if v, ok := s.Values[t]; ok {
				row = append(row, strconv.FormatFloat(v, 'f', -1, 64))
			} else {
				row = append(row, "")
			}
		}
		w.Write(row)
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

// FetchRun reads a run (the newest when id is empty) from the control API
// at api, with token (empty: none) as Authorization: Bearer.
func FetchRun(ctx context.Context, api, token, id string) (*runstate.Run, error) {
	if id == "" {
		var runs []*runstate.Run
		if err := getJSON(ctx, api+"/api/v1/runs?limit=1", token, &runs); err != nil {
			return nil, err
		}
		if len(runs) == 0 {
			return nil, errors.New("there is no run yet: start one with crawlctl seed")
		}
		return runs[0], nil
	}
	var run runstate.Run
	if err := getJSON(ctx, api+"/api/v1/runs/"+id, token, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// Progress is what WaitDrained reports while it waits.
type Progress struct {
	Run        *runstate.Run
	Partitions int
	Drained    int // partitions with no lag
	Lag        int64
	Elapsed    time.Duration
	// Err is set, and the rest zero, while the control API does not
	// answer (a pod restarting): WaitDrained retries for MaxUnreachable.
	Err error
}

// MaxUnreachable is how long WaitDrained keeps asking a control API that
// does not answer, or answers 5xx, before it gives up.
const MaxUnreachable = 2 * time.Minute

// transient says whether err is the control API not answering (no
// connection, a reset, a 5xx) rather than an answer.
func transient(err error) bool {
	var ue *url.Error
	var se *statusError
	return errors.As(err, &ue) || (errors.As(err, &se) && se.code >= 500)
}

// statusError is an answer of the control API other than 200.
type statusError struct {
	url, msg string
	code     int
}

func (e *statusError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("%s: HTTP %d: %s", e.url, e.code, e.msg)
	}
	return fmt.Sprintf("%s: HTTP %d", e.url, e.code)
}

// UntilDrained waits until the run drains (o.RunID, else the newest),
// then for one more scrape of the metrics store (every scrape), so that
// the snapshot sees the drained state, and collects it.
func UntilDrained(ctx context.Context, o Options, scrape time.Duration, report func(Progress)) (*Result, error) {
	run, err := WaitDrained(ctx, o.API, o.APIToken, o.RunID, drainPoll, report)
	if err != nil {
		return nil, err
	}
	o.RunID = run.ID
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(scrape + time.Second):
	}
	return Collect(ctx, o)
}

// drainPoll is how often UntilDrained asks whether the run drained.
const drainPoll = 2 * time.Second

// WaitDrained polls the run until it drains, calling report on each poll
// (token as for FetchRun).
func WaitDrained(ctx context.Context, api, token, id string, every time.Duration, report func(Progress)) (*runstate.Run, error) {
	var down time.Time // since when the API has not answered
	for {
		run, err := FetchRun(ctx, api, token, id)
		switch {
		case err != nil && transient(err) && (down.IsZero() || time.Since(down) < MaxUnreachable):
			if down.IsZero() {
				down = time.Now()
			}
			report(Progress{Err: err})
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(every):
			}
			continue
		case err != nil && transient(err):
			return nil, fmt.Errorf("%w (no answer for %v)", err, MaxUnreachable)
		case err != nil:
			return nil, err
		}
		down = time.Time{}
		p := Progress{Run: run, Elapsed: time.Since(run.CreatedAt)}
		var lag struct {
			Groups map[string][]topics.PartitionLag `json:"groups"`
		}
		if getJSON(ctx, api+"/api/v1/lag", token, &lag) == nil {
			for _, l := range lag.Groups[topics.WorkerGroup] {
				if l.Topic != topics.Frontier {
					continue
				}
				p.Partitions++
				p.Lag += l.Lag
				if l.Lag == 0 {
					p.Drained++
				}
			}
		}
		report(p)
		if run.State == runstate.StateDrained {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

// getJSON reads url into v, sending token (empty: none) as
// Authorization: Bearer.
func getJSON(ctx context.Context, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("calling the control API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error struct{ Message string } } // the API's error shape
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return &statusError{url: url, code: resp.StatusCode, msg: e.Error.Message}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// sortedTimes lists a series' timestamps in order.
func sortedTimes(s Series) []int64 {
	ts := make([]int64, 0, len(s.Values))
	for t := range s.Values {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}
