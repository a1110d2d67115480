package grid

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sessions     *prometheus.CounterVec
	queueWait    prometheus.Histogram
	queued       prometheus.Gauge
	live         prometheus.Gauge
	dialFailures prometheus.Counter
	busyRetries  prometheus.Counter
	restarts     prometheus.Counter
	bytes        *prometheus.CounterVec
	workers      *workerCollector
}

func newMetrics(g *Grid) metrics {
	return metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_grid_sessions_total",
			Help: "Client sessions by outcome: served, no_worker (503), queue_full (429), unauthorized, forbidden_origin, handshake_failed, client_gone, error."},
			[]string{"outcome"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crawl_grid_queue_wait_seconds",
			Help:    "Time from a client's arrival to its worker being chosen (or its refusal).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2, 5, 10}}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_grid_queue_clients",
			Help: "Clients waiting for a worker."}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_grid_live_sessions",
			Help: "Sessions this grid proxy relays now."}),
		dialFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_grid_dial_failures_total",
			Help: "Dials to a chosen worker that failed (the session went to another)."}),
		busyRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_grid_busy_retries_total",
			Help: "Dials a chosen worker answered 503 (a slot not yet freed on its side), asked again."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_grid_worker_restarts_total",
			Help: "Shutdown commands sent to workers at their lifetime limit."}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_grid_bytes_total",
			Help: "Message bytes relayed, by direction."}, []string{"direction"}),
		workers: &workerCollector{g: g,
			active: prometheus.NewDesc("crawl_grid_worker_active_sessions", "Live sessions per worker (registry).",
				[]string{"worker"}, nil),
			lifetime: prometheus.NewDesc("crawl_grid_worker_lifetime_sessions", "Sessions since the worker's browser started (registry).",
				[]string{"worker"}, nil),
			available: prometheus.NewDesc("crawl_grid_worker_available", "1 if the worker is available, 0 if draining.",
				[]string{"worker"}, nil)},
	}
}

func (m metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sessions, m.queueWait, m.queued, m.live, m.dialFailures, m.busyRetries, m.restarts, m.bytes, m.workers}
}

// workerCollector reads per-worker counts from the registry at scrape time.
type workerCollector struct {
	g                           *Grid
	active, lifetime, available *prometheus.Desc
}

func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.lifetime
	ch <- c.available
}

func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ws, err := c.g.opts.Registry.Workers(ctx)
	if err != nil {
		return
	}
	for _, w := range ws {
		avail := 0.0
		if w.Status == "available" {
			avail = 1
		}
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(w.Active), w.ID)
		ch <- prometheus.MustNewConstMetric(c.lifetime, prometheus.GaugeValue, float64(w.Lifetime), w.ID)
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, avail, w.ID)
	}
}
