// Package collect snapshots a crawl run's metrics into a folder a person can
// read: an overview picture like a Grafana dashboard, one CSV per panel, the
// run's settings and totals, and a summary computed from the same data. It
// only needs the Prometheus HTTP API and the control API, so it works the
// same against the local provider's store and a cluster's Prometheus.
package collect

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Panel is one chart of the overview and one CSV.
type Panel struct {
	File   string // csv_data/<File>.csv
	Title  string
	YLabel string
	// Query is PromQL; {{W}} is replaced by the rate window.
	Query string
	// Label names the series (a label of the result, or fixed text).
	Label string
}

// Panels are the overview's charts.
var Panels = []Panel{
	{File: "frontier_lag", Title: "Frontier lag per partition", YLabel: "records",
		Query: `sum by (partition) (crawl_api_consumer_lag_records{group="crawl-workers",topic="crawl.frontier"})`, Label: "partition"},
	{File: "replicas", Title: "Worker and graph-writer replicas", YLabel: "ready replicas",
		// The local supervisor's gauge, or kube-state-metrics' on a cluster.
		Query: `sum by (component) (crawl_supervisor_replicas_available{component=~"worker|graph-writer"} or ` +
			`label_replace(kube_deployment_status_replicas_available{deployment=~"worker|graph-writer"}, "component", "$1", "deployment", "(.+)"))`,
		Label: "component"},
	{File: "rate_limited", Title: "429 hits per egress", YLabel: "429/s",
		Query: `sum by (egress) (rate(crawl_worker_rate_limited_total[{{W}}]))`, Label: "egress"},
	{File: "throughput", Title: "Crawl throughput by outcome", YLabel: "jobs/s",
		Query: `sum by (outcome) (rate(crawl_worker_jobs_total[{{W}}]))`, Label: "outcome"},
	{File: "edges", Title: "Graph writer edges/s", YLabel: "edges/s",
		Query: `sum(rate(crawl_graph_writer_edges_written_total[{{W}}]))`, Label: "=edges/s"},
	{File: "fetch_latency", Title: "Fetch latency p50 / p95", YLabel: "seconds",
		Query: `label_replace(histogram_quantile(0.5, sum by (le) (rate(crawl_worker_fetch_duration_seconds_bucket[{{W}}]))), "q", "p50", "", "") or ` +
			`label_replace(histogram_quantile(0.95, sum by (le) (rate(crawl_worker_fetch_duration_seconds_bucket[{{W}}]))), "q", "p95", "", "")`, Label: "q"},
	{File: "errors", Title: "Errors: non-200 fetches by status, DLQ", YLabel: "per second",
		Query: `sum by (code) (rate(crawl_worker_fetches_total{code!="200"}[{{W}}])) or ` +
			`label_replace(sum(rate(crawl_worker_jobs_total{outcome="dlq"}[{{W}}])), "code", "dlq", "", "")`, Label: "code"},
}

// Series is one line of a panel.
type Series struct {
	Name   string
	Values map[int64]float64 // unix seconds → value
}

// PanelData is a panel's series over the window.
type PanelData struct {
	Panel
	Times  []int64 // the grid of the range query
	Series []Series
}

// Querier runs range queries against a Prometheus HTTP API.
type Querier struct{ api v1.API }

// NewQuerier talks to the Prometheus HTTP API at url.
func NewQuerier(url string) (*Querier, error) {
	c, err := promapi.NewClient(promapi.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", url, err)
	}
	return &Querier{api: v1.NewAPI(c)}, nil
}

// Range runs one panel's query.
func (q *Querier) Range(ctx context.Context, p Panel, start, end time.Time, step, window time.Duration) (*PanelData, error) {
	expr := strings.ReplaceAll(p.Query, "{{W}}", model.Duration(window).String())
	val, _, _, err := q.api.QueryRange(ctx, expr, v1.Range{Start: start, End: end, Step: step})
	if err != nil {
		return nil, fmt.Errorf("panel %s: %w", p.File, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("panel %s: a %s, not a matrix", p.File, val.Type())
	}
	d := &PanelData{Panel: p}
	for t := start.Truncate(time.Second); !t.After(end); t = t.Add(step) {
		d.Times = append(d.Times, t.Unix())
	}
	for _, ss := range m {
		name := p.Label
		if !strings.HasPrefix(name, "=") {
			name = string(ss.Metric[model.LabelName(p.Label)])
		} else {
			name = name[1:]
		}
		s := Series{Name: name, Values: map[int64]float64{}}
		for _, v := range ss.Values {
			if f := float64(v.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				s.Values[v.Timestamp.Unix()] = f
			}
		}
		d.Series = append(d.Series, s)
	}
	sort.Slice(d.Series, func(i, j int) bool { return seriesLess(d.Series[i].Name, d.Series[j].Name) })
	return d, nil
}

// seriesLess orders numerically when both names are numbers (partitions).
func seriesLess(a, b string) bool {
	var x, y int
	if _, err := fmt.Sscan(a, &x); err == nil {
		if _, err := fmt.Sscan(b, &y); err == nil {
			return x < y
		}
	}
	return a < b
}

// Instant runs an instant query and returns value by the given label.
func (q *Querier) Instant(ctx context.Context, expr, label string, at time.Time) (map[string]float64, error) {
	val, _, _, err := q.api.Query(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	if vec, ok := val.(model.Vector); ok {
		for _, s := range vec {
			out[string(s.Metric[model.LabelName(label)])] = float64(s.Value)
		}
	}
	return out, nil
}
