// Package metricstore is the local provider's metrics store: an embedded
// Prometheus TSDB, a scrape loop over every component's /metrics, and the
// PromQL engine behind the Prometheus HTTP query API (/api/v1/query,
// /api/v1/query_range, /api/v1/series). `crawlctl collect` talks to it as to
// any Prometheus server.
package metricstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
)

// Target is one /metrics endpoint.
type Target struct {
	Job, Instance, URL string
}

// Store is a TSDB with a query engine.
type Store struct {
	db     *tsdb.DB
	engine *promql.Engine
	log    *slog.Logger
	client *http.Client

	mu      sync.Mutex
	seen    map[string]struct{} // series this store has written
	cleanup func()              // removes an OpenCopy's copy
}

// Open opens (or creates) the TSDB in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = int64(retention / time.Millisecond)
	db, err := tsdb.Open(dir, log, nil, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the metrics store in %s: %w", dir, err)
	}
	return newStore(db, log), nil
}

// retention is how long the store keeps samples.
const retention = 7 * 24 * time.Hour

// OpenCopy opens a copy of the TSDB a stopped store left in dir (its
// blocks and its write-ahead log, replayed), for queries that must not
// change dir; Close removes the copy.
func OpenCopy(dir string, log *slog.Logger) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
		return nil, fmt.Errorf("no metrics store in %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "crawlctl-tsdb-")
	if err != nil {
		return nil, err
	}
	copyDir := filepath.Join(tmp, "tsdb")
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("copying the metrics store in %s: %w", dir, err)
	}
	s, err := Open(copyDir, log)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	s.cleanup = func() { os.RemoveAll(tmp) }
	return s, nil
}

func newStore(db *tsdb.DB, log *slog.Logger) *Store {
	return &Store{
		db:     db,
		log:    log,
		client: &http.Client{Timeout: 4 * time.Second},
		seen:   map[string]struct{}{},
		engine: promql.NewEngine(promql.EngineOpts{
			Logger: log, MaxSamples: 50_000_000, Timeout: 2 * time.Minute,
			LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true,
		}),
	}
}

// Close flushes and closes the TSDB (and removes an OpenCopy's copy).
func (s *Store) Close() error {
	err := s.db.Close()
	if s.cleanup != nil {
		s.cleanup()
	}
	return err
}

// Run scrapes the targets every interval until ctx ends.
func (s *Store) Run(ctx context.Context, interval time.Duration, targets func() []Target) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.ScrapeAll(ctx, targets())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScrapeAll scrapes every target once, concurrently, at one timestamp.
func (s *Store) ScrapeAll(ctx context.Context, targets []Target) {
	now := time.Now().UnixMilli()
	var wg sync.WaitGroup
	for _, tg := range targets {
		wg.Go(func() {
			if err := s.scrape(ctx, tg, now); err != nil {
				s.log.Debug("scrape failed", "job", tg.Job, "instance", tg.Instance, "err", err)
			}
		})
	}
	wg.Wait()
}

func (s *Store) scrape(ctx context.Context, tg Target, ts int64) error {
	app := s.db.Appender(ctx)
	up := 0.0
	var families map[string]*dto.MetricFamily
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL, nil)
	if err == nil {
		// Protobuf carries each counter's created timestamp.
		req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim))+";q=1,text/plain;q=0.5")
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			families, err = parse(resp.Body, expfmt.ResponseFormat(resp.Header))
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
	}
	base := []labels.Label{{Name: "job", Value: tg.Job}, {Name: "instance", Value: tg.Instance}}
	var created int64 // ms; the current metric's created timestamp, 0 if none
	add := func(name string, extra []labels.Label, v float64) {
		ls := make([]labels.Label, 0, len(base)+len(extra)+1)
		ls = append(ls, labels.Label{Name: "__name__", Value: name})
		ls = append(ls, base...)
		ls = append(ls, extra...)
		lset := labels.New(ls...)
		if created > 0 && created < ts && s.firstSight(lset) {
			// A counter born since the last scrape: its increments
			// before this scrape count from zero at its birth, as
			// Prometheus's created-timestamp zero ingestion does.
			app.Append(0, lset, created, 0)
		}
		if _, aerr := app.Append(0, lset, ts, v); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err == nil {
		up = 1
		for name, mf := range families {
			for _, m := range mf.GetMetric() {
				ls := make([]labels.Label, 0, len(m.GetLabel()))
				for _, l := range m.GetLabel() {
					ls = append(ls, labels.Label{Name: l.GetName(), Value: l.GetValue()})
				}
				created = createdMillis(m)
				flatten(name, mf.GetType(), m, ls, add)
			}
		}
	}
	created = 0
	add("up", nil, up)
	if cerr := app.Commit(); cerr != nil {
		return cerr
	}
	return err
}

// parse decodes an exposition in the format the target answered with.
func parse(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	if format.FormatType() != expfmt.TypeProtoDelim {
		p := expfmt.NewTextParser(model.UTF8Validation)
		return p.TextToMetricFamilies(r)
	}
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(r, format)
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, err
		}
		out[mf.GetName()] = mf
	}
}

// createdMillis is a counter's or histogram's created timestamp in ms.
func createdMillis(m *dto.Metric) int64 {
	var t interface{ AsTime() time.Time }
	switch {
	case m.GetCounter().GetCreatedTimestamp() != nil:
		t = m.GetCounter().GetCreatedTimestamp()
	case m.GetHistogram().GetCreatedTimestamp() != nil:
		t = m.GetHistogram().GetCreatedTimestamp()
	default:
		return 0
	}
	return t.AsTime().UnixMilli()
}

// firstSight reports whether the store has not written this series yet.
func (s *Store) firstSight(ls labels.Labels) bool {
	k := ls.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[k]; ok {
		return false
	}
	s.seen[k] = struct{}{}
	return true
}

// flatten turns one metric into samples as Prometheus stores them.
func flatten(name string, typ dto.MetricType, m *dto.Metric, ls []labels.Label, add func(string, []labels.Label, float64)) {
	with := func(extra ...labels.Label) []labels.Label {
		return append(append(make([]labels.Label, 0, len(ls)+len(extra)), ls...), extra...)
	}
	switch typ {
	case dto.MetricType_COUNTER:
		add(name, ls, m.GetCounter().GetValue())
	case dto.MetricType_GAUGE:
		add(name, ls, m.GetGauge().GetValue())
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		inf := false
		for _, b := range h.GetBucket() {
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
			add(name+"_bucket", with(labels.Label{Name: "le", Value: formatFloat(b.GetUpperBound())}), float64(b.GetCumulativeCount()))
		}
		if !inf {
			add(name+"_bucket", with(labels.Label{Name: "le", Value: "+Inf"}), float64(h.GetSampleCount()))
		}
		add(name+"_sum", ls, h.GetSampleSum())
		add(name+"_count", ls, float64(h.GetSampleCount()))
	case dto.MetricType_SUMMARY:
		sm := m.GetSummary()
		for _, q := range sm.GetQuantile() {
			add(name, with(labels.Label{Name: "quantile", Value: formatFloat(q.GetQuantile())}), q.GetValue())
		}
		add(name+"_sum", ls, sm.GetSampleSum())
		add(name+"_count", ls, float64(sm.GetSampleCount()))
	default:
		add(name, ls, m.GetUntyped().GetValue())
	}
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
