package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/crawlctl/crawlctl/pkg/metricstore"
	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// synthesize writes 30 minutes of a run's series at a 5 s scrape interval
// into a TSDB in dir: frontier lag for 32 partitions, replicas, and the
// counters and histogram of 31 workers behind 3 egress proxies.
func synthesize(b *testing.B, dir string, start time.Time, d time.Duration) {
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	app := db.Appender(context.Background())
	add := func(ls labels.Labels, t time.Time, v float64) {
		if _, err := app.Append(0, ls, t.UnixMilli(), v); err != nil {
			b.Fatal(err)
		}
	}
	buckets := []string{".005", ".01", ".025", ".05", ".1", ".25", ".5", "1", "2.5", "5", "10", "20", "30", "+Inf"}
	steps := int(d / (5 * time.Second))
	for i := range steps {
		t := start.Add(time.Duration(i) * 5 * time.Second)
		phase := float64(i) / float64(steps)
		for p := range 32 {
			add(labels.FromStrings("__name__", "crawl_api_consumer_lag_records", "group", "crawl-workers", "topic", "crawl.frontier",
				"partition", fmt.Sprint(p), "job", "api", "instance", "api-0"), t, math.Max(0, 190*math.Sin(math.Pi*phase)-float64(p)))
		}
		add(labels.FromStrings("__name__", "crawl_supervisor_replicas_available", "component", "worker", "job", "supervisor", "instance", "s"), t, math.Min(31, 1+float64(i)))
		add(labels.FromStrings("__name__", "crawl_supervisor_replicas_available", "component", "graph-writer", "job", "supervisor", "instance", "s"), t, 1)
		add(labels.FromStrings("__name__", "crawl_graph_writer_edges_written_total", "job", "graph-writer", "instance", "gw-0"), t, float64(i)*160)
		for w := range 31 {
			inst := fmt.Sprintf("worker-%d", w)
			egress := fmt.Sprintf("127.0.0.%d:3128", 2+w%3)
			for _, o := range []string{"crawled", "deduped", "retried", "dlq"} {
				add(labels.FromStrings("__name__", "crawl_worker_jobs_total", "outcome", o, "job", "worker", "instance", inst), t, float64(i*(len(o)%3+1)))
			}
			add(labels.FromStrings("__name__", "crawl_worker_rate_limited_total", "egress", egress, "job", "worker", "instance", inst), t, float64(i/10))
			for _, code := range []string{"200", "429", "error"} {
				add(labels.FromStrings("__name__", "crawl_worker_fetches_total", "egress", egress, "code", code, "job", "worker", "instance", inst), t, float64(i*len(code)))
			}
			for j, le := range buckets {
				add(labels.FromStrings("__name__", "crawl_worker_fetch_duration_seconds_bucket", "egress", egress, "le", le, "job", "worker", "instance", inst), t, float64(i*(j+1)))
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCollect30MinuteRun times `collect` of a 30-minute run: seven
// range queries at a 5 s step over ~1,900 series, the CSVs, the overview
// picture and the summary.
func BenchmarkCollect30MinuteRun(b *testing.B) {
	dir := b.TempDir()
	start := time.Now().Add(-31 * time.Minute).Truncate(time.Second)
	synthesize(b, dir, start, 30*time.Minute)
	store, err := metricstore.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	mux := http.NewServeMux()
	store.Register(mux)
	prom := httptest.NewServer(mux)
	defer prom.Close()
	run := runstate.Run{ID: "r-bench", Name: "bench", Seeds: make([]string, 20), CreatedAt: start, DrainedAt: start.Add(30 * time.Minute),
		State: runstate.StateDrained, DLQByReason: map[string]int64{"not_found": 3}}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/runs" {
			json.NewEncoder(w).Encode([]runstate.Run{run})
			return
		}
		json.NewEncoder(w).Encode(run)
	}))
	defer api.Close()
	out := b.TempDir()
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		res, err := Collect(context.Background(), Options{Prometheus: prom.URL, API: api.URL, Out: out})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		if res.Summary.PeakLag < 1000 {
			b.Fatalf("peak lag %v: the synthetic data did not come through", res.Summary.PeakLag)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/collect")
}
