package metricstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

func TestScrapeAndQuery(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "h"}, []string{"outcome"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag", Help: "h"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "h", Buckets: []float64{0.1, 1}})
	reg.MustRegister(c, g, h)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	s, err := Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mux := http.NewServeMux()
	s.Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()

	targets := []Target{{Job: "worker", Instance: "w0", URL: target.URL}, {Job: "dead", Instance: "d0", URL: "http://127.0.0.1:1/metrics"}}
	start := time.Now()
	for i := range 3 {
		c.WithLabelValues("crawled").Add(10)
		g.Set(float64(100 - 10*i))
		h.Observe(0.5)
		s.ScrapeAll(context.Background(), targets)
		time.Sleep(20 * time.Millisecond)
	}
	end := time.Now()

	get := func(path string, q url.Values) map[string]any {
		resp, err := http.Get(api.URL + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if out["status"] != "success" {
			t.Fatalf("%s %v: %v", path, q, out)
		}
		return out["data"].(map[string]any)
	}
	inst := get("/api/v1/query", url.Values{"query": {`jobs_total{job="worker",outcome="crawled"}`}})
	res := inst["result"].([]any)
	if len(res) != 1 || res[0].(map[string]any)["value"].([]any)[1] != "30" {
		t.Errorf("instant query: %v", inst)
	}
	// The counter was at 10 before its first scrape: with its created
	// timestamp stored as a zero, increase() sees all 30 (plus PromQL's
	// extrapolation to the window), where without it it would see 20.
	inc := get("/api/v1/query", url.Values{"query": {`increase(jobs_total{outcome="crawled"}[1h])`}})
	if r := inc["result"].([]any); len(r) != 1 {
		t.Errorf("increase: %v", inc)
	} else if v, _ := strconv.ParseFloat(r[0].(map[string]any)["value"].([]any)[1].(string), 64); v < 29 || v > 40 {
		t.Errorf("increase over the run = %v, want 30 (the increments before the first scrape count)", v)
	}
	up := get("/api/v1/query", url.Values{"query": {`sum by (job) (up)`}})
	if fmt.Sprint(up["result"]) == "" || len(up["result"].([]any)) != 2 {
		t.Errorf("up per job: %v", up)
	}
	rng := get("/api/v1/query_range", url.Values{"query": {"lag"}, "start": {fmt.Sprint(start.Unix())},
		"end": {fmt.Sprint(end.Unix() + 1)}, "step": {"1s"}})
	if rng["resultType"] != "matrix" || len(rng["result"].([]any)) != 1 {
		t.Errorf("range query: %v", rng)
	}
	q := get("/api/v1/query", url.Values{"query": {`histogram_quantile(0.5, sum by (le) (latency_seconds_bucket))`}})
	if v := q["result"].([]any)[0].(map[string]any)["value"].([]any)[1]; v != "0.55" {
		t.Errorf("p50 of 0.5s observations in buckets 0.1,1: %v", v)
	}
	resp, _ := http.Get(api.URL + "/api/v1/query?query=" + url.QueryEscape("sum(("))
	if resp.StatusCode != 400 {
		t.Errorf("bad query: %d", resp.StatusCode)
	}
	resp.Body.Close()
	sr, err := http.Get(api.URL + "/api/v1/series?match[]=" + url.QueryEscape(`{job="worker"}`))
	if err != nil {
		t.Fatal(err)
	}
	var series struct{ Data []map[string]string }
	json.NewDecoder(sr.Body).Decode(&series)
	sr.Body.Close()
	if len(series.Data) < 5 {
		t.Errorf("series of job worker: %v", series.Data)
	}
}

// TestOpenCopy: the samples a store wrote are found in a copy of its
// directory taken while it runs, as a killed store leaves it (write-ahead
// log, no block, its lock file), and the directory is not changed.
func TestOpenCopy(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag", Help: "h"})
	reg.MustRegister(g)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	dir := t.TempDir()
	live, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for i := range 3 {
		g.Set(float64(7 * (i + 1)))
		for ms := time.Now().UnixMilli(); time.Now().UnixMilli() == ms; { // one sample per millisecond
		}
		live.ScrapeAll(context.Background(), []Target{{Job: "api", Instance: "api-0", URL: target.URL}})
	}
	before := testenv.DirSizes(t, dir)

	s, err := OpenCopy(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()
	resp, err := http.Get(api.URL + "/api/v1/query?query=" + url.QueryEscape(`max_over_time(lag{job="api"}[1h])`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data struct {
			Result []struct{ Value []any }
		}
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if len(out.Data.Result) != 1 || out.Data.Result[0].Value[1] != "21" {
		t.Errorf("max of the copied samples: %+v, want 21", out.Data.Result)
	}
	if after := testenv.DirSizes(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the store's directory changed:\nbefore %v\nafter  %v", before, after)
	}
	s.Close()
	if _, err := OpenCopy(t.TempDir(), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("OpenCopy of an empty directory succeeded")
	}
}
