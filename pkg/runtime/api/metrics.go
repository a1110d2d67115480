package api

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/runstate"
)

var (
	lagDesc = prometheus.NewDesc("crawl_api_consumer_lag_records",
		"Records between a consumer group's committed offset and the partition's end.",
		[]string{"group", "topic", "partition"}, nil)
	lagUpDesc = prometheus.NewDesc("crawl_api_lag_up",
		"1 when the last lag computation succeeded.", nil, nil)
	runURLsDesc = prometheus.NewDesc("crawl_api_run_urls",
		"A run's URLs by state: enqueued, crawled, deduped, dlq, retried.",
		[]string{"run", "state"}, nil)
	runRowsDesc = prometheus.NewDesc("crawl_api_run_graph_rows",
		"A run's rows in the graph store, by table.",
		[]string{"run", "table"}, nil)
	runDrainedDesc = prometheus.NewDesc("crawl_api_run_drained",
		"1 once every enqueued URL of the run has an outcome.",
		[]string{"run"}, nil)
	runDLQDesc = prometheus.NewDesc("crawl_api_run_dlq_by_reason",
		"A run's DLQ outcomes by failure reason.",
		[]string{"run", "reason"}, nil)
)

// lagCollector computes consumer lag at scrape time.
type lagCollector struct{ s *Server }

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- lagUpDesc
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rep, err := c.s.Lag(ctx)
	if err != nil {
		c.s.opts.Log.Warn("computing lag", "err", err)
		ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 1)
	for group, parts := range rep.Groups {
		for _, p := range parts {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag),
				group, p.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
}

// runCollector exports the counters of recent runs.
type runCollector struct{ s *Server }

// recentRuns is how many runs the metrics cover.
const recentRuns = 10

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runURLsDesc
	ch <- runRowsDesc
	ch <- runDrainedDesc
	ch <- runDLQDesc
}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	runs, err := c.s.opts.Runs.List(ctx, recentRuns)
	if err != nil {
		c.s.opts.Log.Warn("listing runs for metrics", "err", err)
		return
	}
	for _, r := range runs {
		k := r.Counters
		for state, v := range map[string]int64{"enqueued": k.Enqueued, "crawled": k.Crawled, "deduped": k.Deduped, "dlq": k.DLQ, "retried": k.Retried} {
			ch <- prometheus.MustNewConstMetric(runURLsDesc, prometheus.GaugeValue, float64(v), r.ID, state)
		}
		ch <- prometheus.MustNewConstMetric(runRowsDesc, prometheus.GaugeValue, float64(k.NodesWritten), r.ID, "nodes")
		ch <- prometheus.MustNewConstMetric(runRowsDesc, prometheus.GaugeValue, float64(k.EdgesWritten), r.ID, "edges")
		drained := 0.0
		if r.State == runstate.StateDrained {
			drained = 1
		}
		ch <- prometheus.MustNewConstMetric(runDrainedDesc, prometheus.GaugeValue, drained, r.ID)
		for reason, n := range r.DLQByReason {
			ch <- prometheus.MustNewConstMetric(runDLQDesc, prometheus.GaugeValue, float64(n), r.ID, reason)
		}
	}
}
