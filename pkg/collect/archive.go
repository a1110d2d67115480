package collect

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// StateLost is an archived run's state when it had not drained by the
// time its stack stopped: what was left of it went with the stack.
const StateLost = "lost"

// ArchivedRun is a run of a stack that is no longer up (its control API
// and run store are gone): its description from runsDir
// (runstate.SaveRun), its counters the last values the metrics store
// scraped from the control API's crawl_api_run_* gauges, and its drain
// time the first scrape that saw it drained (so within one scrape
// interval of the exact time the API reports).
func ArchivedRun(ctx context.Context, q *Querier, runsDir, id string) (*runstate.Run, error) {
	run, err := runstate.LoadRun(runsDir, id)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sel := fmt.Sprintf(`{run=%q}[%ds]`, run.ID, int(now.Sub(run.CreatedAt).Seconds())+60)
	last := func(metric, label string) (map[string]float64, error) {
		v, err := q.Instant(ctx, "last_over_time("+metric+sel+")", label, now)
		if err != nil {
			return nil, fmt.Errorf("reading %s of run %s from the metrics: %w", metric, run.ID, err)
		}
		return v, nil
	}
	urls, err := last("crawl_api_run_urls", "state")
	if err != nil {
		return nil, err
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("the metrics on disk hold no counters of run %s: the stack stopped before its first scrape of the run", run.ID)
	}
	rows, err := last("crawl_api_run_graph_rows", "table")
	if err != nil {
		return nil, err
	}
	dlq, err := last("crawl_api_run_dlq_by_reason", "reason")
	if err != nil {
		return nil, err
	}
	run.Counters = runstate.Counters{Enqueued: int64(urls["enqueued"]), Crawled: int64(urls["crawled"]),
		Deduped: int64(urls["deduped"]), DLQ: int64(urls["dlq"]), Retried: int64(urls["retried"]),
		NodesWritten: int64(rows["nodes"]), EdgesWritten: int64(rows["edges"])}
	run.DLQByReason = map[string]int64{}
	for reason, n := range dlq {
		run.DLQByReason[reason] = int64(n)
	}
	at, ok, err := q.FirstAt(ctx, fmt.Sprintf(`crawl_api_run_drained{run=%q} == 1`, run.ID), run.CreatedAt, now)
	switch {
	case err != nil:
		return nil, err
	case ok:
		run.State, run.DrainedAt = runstate.StateDrained, at
	default:
		run.State, run.DrainedAt = StateLost, time.Time{}
	}
	return run, nil
}

// FirstAt is the first time in [start, end] at which expr has a value,
// to the second (coarser over spans of more than 10,000 s).
func (q *Querier) FirstAt(ctx context.Context, expr string, start, end time.Time) (time.Time, bool, error) {
	step := max(time.Second, end.Sub(start)/10000)
	val, _, _, err := q.api.QueryRange(ctx, expr, v1.Range{Start: start, End: end, Step: step})
	if err != nil {
		return time.Time{}, false, err
	}
	var first time.Time
	if m, ok := val.(model.Matrix); ok {
		for _, s := range m {
			if len(s.Values) > 0 && (first.IsZero() || s.Values[0].Timestamp.Time().Before(first)) {
				first = s.Values[0].Timestamp.Time()
			}
		}
	}
	return first, !first.IsZero(), nil
}
