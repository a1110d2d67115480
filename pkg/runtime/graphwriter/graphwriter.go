// Package graphwriter is the graph writer (`crawlctl run graph-writer`): it
// consumes the results and edges topics and writes nodes and edges to the
// graph store in batches of idempotent upserts. Offsets are committed only
// after a batch is durable; while the store is down it pauses and retries
// the same batch, never skipping one (the reference writer silently dropped
// edges during a database outage).
package graphwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/crawl"
	"github.com/crawlctl/crawlctl/pkg/graphstore"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Options configure a graph writer.
type Options struct {
	Brokers        []string
	Store          *graphstore.Store
	Runs           *runstate.Store // optional: publishes per-run row counts
	BatchSize      int             // records per batch (default 1000)
	BatchWait      time.Duration   // how long to gather a batch (default 200ms)
	SessionTimeout time.Duration
	ClientID       string
	Health         *serve.Health // optional: ready while the store answers
	Log            *slog.Logger
	Registerer     prometheus.Registerer
}

// DefaultOptions are a graph writer's defaults, which its flags show; New fills
// every zero field from them.
func DefaultOptions() Options {
	return Options{
		BatchSize:      1000,
		BatchWait:      200 * time.Millisecond,
		SessionTimeout: 10 * time.Second,
	}
}

// Writer is one graph writer.
type Writer struct {
	opts Options
	cl   *kgo.Client
	m    metrics
}

type metrics struct {
	batches       prometheus.Counter
	nodes, edges  prometheus.Counter
	records       prometheus.Counter
	storeErrors   prometheus.Counter
	storeUp       prometheus.Gauge
	batchDuration prometheus.Histogram
	dropped       prometheus.Counter
}

// New builds a writer.
func New(opts Options) (*Writer, error) {
	if len(opts.Brokers) == 0 || opts.Store == nil {
		return nil, errors.New("graph writer: Kafka brokers and a graph store are required")
	}
	d := DefaultOptions()
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = d.BatchWait
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = d.SessionTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{opts: opts, m: metrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_batches_total", Help: "Batches written to the graph store."}),
		nodes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_nodes_written_total", Help: "Node rows inserted or completed."}),
		edges:   prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_edges_written_total", Help: "Edge rows inserted (repeats excluded)."}),
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_records_total", Help: "Records consumed from results and edges."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_store_errors_total",
			Help: "Batch writes that failed and were retried."}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_graph_writer_store_up", Help: "1 while the graph store accepts writes."}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crawl_graph_writer_batch_duration_seconds",
			Help: "Time to write one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_graph_writer_dropped_records_total",
			Help: "Undecodable records skipped."}),
	}}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.m.batches, w.m.nodes, w.m.edges, w.m.records, w.m.storeErrors, w.m.storeUp, w.m.batchDuration, w.m.dropped)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID(opts.ClientID),
		kgo.ConsumerGroup(topics.GraphWriterGroup),
		kgo.ConsumeTopics(topics.Results, topics.Edges),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // a batch is written and committed before its partitions move
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("graph writer: Kafka client: %w", err)
	}
	w.cl = cl
	return w, nil
}

// Run writes batches until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	defer w.cl.Close()
	w.setUp(true)
	for ctx.Err() == nil {
		recs := w.gather(ctx)
		if len(recs) > 0 {
			if err := w.write(ctx, recs); err != nil {
				w.cl.AllowRebalance()
				break // stopping: the batch stays uncommitted and is redelivered
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := w.cl.CommitRecords(cctx, recs...); err != nil {
				w.opts.Log.Warn("commit failed; the batch will be redelivered (writes are idempotent)", "err", err)
			}
			cancel()
		}
		w.cl.AllowRebalance()
	}
	w.cl.LeaveGroup()
	return nil
}

// gather polls until a batch is full or BatchWait passed since its first
// record.
func (w *Writer) gather(ctx context.Context) []*kgo.Record {
	var recs []*kgo.Record
	var until time.Time // zero until the first record arrives
	for len(recs) < w.opts.BatchSize {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !until.IsZero() {
			pctx, cancel = context.WithDeadline(ctx, until)
		}
		fetches := w.cl.PollRecords(pctx, w.opts.BatchSize-len(recs))
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return recs
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				w.opts.Log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		recs = append(recs, fetches.Records()...)
		if len(recs) > 0 && until.IsZero() {
			until = time.Now().Add(w.opts.BatchWait)
		}
		if !until.IsZero() && !time.Now().Before(until) {
			break
		}
	}
	return recs
}

// write decodes a batch and writes it until the store takes it.
func (w *Writer) write(ctx context.Context, recs []*kgo.Record) error {
	var nodes []graphstore.Node
	var edges []graphstore.Edge
	runs := map[string]bool{}
	for _, r := range recs {
		switch r.Topic {
		case topics.Results:
			var res crawl.Result
			if err := crawl.Decode(r.Value, &res); err != nil {
				w.drop(r, err)
				continue
			}
			nodes = append(nodes, graphstore.Node{Run: res.Run, Key: res.Node.Key, Kind: res.Node.Kind, Title: res.Node.Title})
			runs[res.Run] = true
		case topics.Edges:
			var e crawl.Edge
			if err := crawl.Decode(r.Value, &e); err != nil {
				w.drop(r, err)
				continue
			}
			edges = append(edges, graphstore.Edge{Run: e.Run, From: e.From, To: e.To, Relation: e.Relation})
			runs[e.Run] = true
		}
	}
	w.m.records.Add(float64(len(recs)))
	wait := 100 * time.Millisecond
	for {
		start := time.Now()
		written, err := w.opts.Store.Upsert(ctx, nodes, edges)
		if err == nil {
			w.m.batchDuration.Observe(time.Since(start).Seconds())
			w.m.batches.Inc()
			w.m.nodes.Add(float64(written.Nodes))
			w.m.edges.Add(float64(written.Edges))
			w.setUp(true)
			break
		}
		w.m.storeErrors.Inc()
		w.setUp(false)
		w.opts.Log.Warn("graph store write failed; pausing and retrying the same batch", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
	if w.opts.Runs != nil {
		for run := range runs {
			n, e, err := w.opts.Store.Counts(ctx, run)
			if err == nil {
				err = w.opts.Runs.SetWritten(ctx, run, n, e)
			}
			if err != nil {
				w.opts.Log.Warn("publishing row counts", "run", run, "err", err)
			}
		}
	}
	return nil
}

func (w *Writer) drop(r *kgo.Record, err error) {
	w.m.dropped.Inc()
	w.opts.Log.Error("skipping undecodable record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
}

func (w *Writer) setUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	w.m.storeUp.Set(v)
	if w.opts.Health != nil {
		w.opts.Health.SetReady(up)
	}
}
