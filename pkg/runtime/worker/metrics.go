package worker

import "github.com/prometheus/client_golang/prometheus"

// metrics are the worker's Prometheus series.
type metrics struct {
	jobs          *prometheus.CounterVec
	fetches       *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	fetchDuration *prometheus.HistogramVec
	produced      *prometheus.CounterVec
	produceErrors prometheus.Counter
	infraErrors   prometheus.Counter
	commitErrors  prometheus.Counter
	inFlight      prometheus.Gauge
	uncommitted   prometheus.GaugeFunc
	delayed       prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, uncommitted, delayed func() float64) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_worker_jobs_total",
			Help: "Jobs handled, by outcome: crawled, deduped, retried, dlq, redelivered (already finished), dropped (undecodable).",
		}, []string{"outcome"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_worker_fetches_total",
			Help: "Fetches by egress and HTTP status code (error: no response).",
		}, []string{"egress", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_worker_rate_limited_total",
			Help: "HTTP 429 responses by egress.",
		}, []string{"egress"}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crawl_worker_fetch_duration_seconds",
			Help:    "Fetch latency up to the end of the body, by egress.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
		}, []string{"egress"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_worker_records_produced_total",
			Help: "Records produced, by topic.",
		}, []string{"topic"}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crawl_worker_produce_errors_total",
			Help: "Produce calls that failed (the job is tried again).",
		}),
		infraErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crawl_worker_infra_errors_total",
			Help: "Jobs that could not finish because Kafka or Redis failed (the job is tried again).",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crawl_worker_commit_errors_total",
			Help: "Offset commits that failed.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crawl_worker_jobs_in_flight",
			Help: "Jobs being processed now.",
		}),
		uncommitted: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crawl_worker_uncommitted_records",
			Help: "Fetched records not yet finished: the commit lag this worker holds.",
		}, uncommitted),
		delayed: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crawl_worker_delayed_jobs",
			Help: "Retries held until their not_before time.",
		}, delayed),
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.fetches, m.rateLimited, m.fetchDuration, m.produced, m.produceErrors,
			m.infraErrors, m.commitErrors, m.inFlight, m.uncommitted, m.delayed)
	}
	return m
}
