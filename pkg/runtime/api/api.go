// Package api is the control API (`crawlctl run api`): it creates crawl
// runs from seeds, reports their progress, and exports consumer lag per
// topic and partition (computed with kadm: no separate lag exporter) and run
// counters as Prometheus metrics.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/crawl"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Limits on a run request; `crawlctl seed --file` checks the same ones.
const (
	MaxSeeds        = 10_000
	MaxSeedLength   = 500 // bytes
	MaxDepthLimit   = 10
	DefaultMaxDepth = 3
	// MaxBodyBytes fits MaxSeeds seeds of MaxSeedLength, JSON-quoted as
	// EncodeRunRequest quotes them: a byte takes at most two (\" and \\;
	// U+2028 and U+2029 six for three; control characters are refused).
	MaxBodyBytes = MaxSeeds*(2*MaxSeedLength+3) + 4096
)

// Options configure the API.
type Options struct {
	Brokers    []string
	Target     openlibrary.Target
	Runs       *runstate.Store
	Partitions int // frontier partitions, for topic creation
	Log        *slog.Logger
	Registry   *prometheus.Registry // metrics are registered here and served at /metrics
	// Created, when set, is told of each run created, once its seeds are
	// published (the local stack records them on disk).
	Created func(*runstate.Run)
	// Token, when set, is required (Authorization: Bearer or ?token=) on
	// every endpoint but /healthz and /readyz, which the probes call
	// without one.
	Token string
	// MetricsPublic leaves /metrics open with a Token, for a Prometheus
	// that scrapes without one.
	MetricsPublic bool
}

// Server is the control API.
type Server struct {
	opts   Options
	cl     *kgo.Client
	adm    *kadm.Client
	health serve.Health
	mux    *http.ServeMux
}

// New connects to Kafka and builds the API; Start creates the topics.
func New(opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Partitions <= 0 {
		opts.Partitions = topics.DefaultFrontierPartitions
	}
	if len(opts.Brokers) == 0 || opts.Runs == nil || opts.Target.Host() == "" {
		return nil, errors.New("api: Kafka brokers, the run store and the target are required")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(opts.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return nil, fmt.Errorf("api: Kafka client: %w", err)
	}
	s := &Server{opts: opts, cl: cl, adm: kadm.NewClient(cl), mux: http.NewServeMux()}
	opts.Registry.MustRegister(&lagCollector{s: s}, &runCollector{s: s})
	s.mux.HandleFunc("POST /api/v1/runs", s.createRun)
	s.mux.HandleFunc("GET /api/v1/runs", s.listRuns)
	s.mux.HandleFunc("GET /api/v1/runs/{id}", s.getRun)
	s.mux.HandleFunc("GET /api/v1/lag", s.lag)
	s.health.Register(s.mux)
	serve.Metrics(s.mux, "/metrics", opts.Registry)
	return s, nil
}

// Start creates the topics (retrying until Kafka answers or ctx ends) and
// marks the API ready.
func (s *Server) Start(ctx context.Context) error {
	wait := 200 * time.Millisecond
	for {
		err := topics.Ensure(ctx, s.cl, s.opts.Partitions)
		if err == nil {
			break
		}
		s.opts.Log.Warn("creating topics; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating topics: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	s.health.SetReady(true)
	return nil
}

// Close releases the Kafka client.
func (s *Server) Close() { s.cl.Close() }

// apiError is the JSON error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Seed    string `json:"seed,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, seed, format string, args ...any) {
	var e apiError
	e.Error.Code, e.Error.Message, e.Error.Seed = code, fmt.Sprintf(format, args...), seed
	writeJSON(w, code, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// runShape is a run request, for error messages.
const runShape = `{"name": ..., "seeds": [...], "max_depth": 3}`

// RunRequest is the body of POST /api/v1/runs.
type RunRequest struct {
	Name     string   `json:"name"`
	Seeds    []string `json:"seeds"`
	MaxDepth *int     `json:"max_depth,omitempty"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// validate turns a request into canonical seed URLs, naming the first bad
// seed.
func (s *Server) validate(req RunRequest) (urls []string, depth int, badSeed string, err error) {
	if req.Name == "" {
		req.Name = "run"
	}
	if !nameRe.MatchString(req.Name) {
		return nil, 0, "", fmt.Errorf("name %q: use up to 100 letters, digits, '.', '_' or '-'", req.Name)
	}
	depth = DefaultMaxDepth
	if req.MaxDepth != nil {
		depth = *req.MaxDepth
	}
	if depth < 0 || depth > MaxDepthLimit {
		return nil, 0, "", fmt.Errorf("max_depth %d: use 0 to %d", depth, MaxDepthLimit)
	}
	if len(req.Seeds) == 0 || len(req.Seeds) > MaxSeeds {
		return nil, 0, "", fmt.Errorf("seeds: give 1 to %d seeds (got %d)", MaxSeeds, len(req.Seeds))
	}
	seen := map[string]bool{}
	for i, seed := range req.Seeds {
		if err := CheckSeed(seed); err != nil {
			return nil, 0, Excerpt(seed), fmt.Errorf("seed %d: %w", i+1, err)
		}
		u, err := s.opts.Target.SeedURL(seed)
		if err != nil {
			return nil, 0, seed, fmt.Errorf("seed %d (%q): %w", i+1, seed, err)
		}
		if !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	return urls, depth, "", nil
}

// CheckSeed refuses a seed that is too long or is not text: a control
// character or invalid UTF-8 means binary input, never a search term.
func CheckSeed(seed string) error {
	if len(seed) > MaxSeedLength {
		return fmt.Errorf("%q is %d bytes long, over the %d-byte limit", Excerpt(seed), len(seed), MaxSeedLength)
	}
	if !utf8.ValidString(seed) || strings.ContainsFunc(seed, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("%q is not text (a control character or invalid UTF-8): is the file binary?", Excerpt(seed))
	}
	return nil
}

// Excerpt is the start of s, short enough to quote in an error.
func Excerpt(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func newRunID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return "r" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	// A browser sends a cross-site form or text/plain POST without asking;
	// application/json it must ask for (CORS), and this API never allows it.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "", "Content-Type %q: send the run as application/json", r.Header.Get("Content-Type"))
		return
	}
	var req RunRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "", "request body: %v (want %s)", err, runShape)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "", "request body: trailing data after the JSON object (send one object: %s)", runShape)
		return
	}
	urls, depth, bad, err := s.validate(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, bad, "%v", err)
		return
	}
	run, err := s.Enqueue(r.Context(), req.Name, urls, depth)
	if err != nil {
		s.opts.Log.Error("creating run", "err", err)
		writeError(w, http.StatusServiceUnavailable, "", "creating the run: %v", err)
		return
	}
	writeJSON(w, http.StatusCreated, run)
}

// Enqueue creates a run and publishes its depth-0 jobs.
func (s *Server) Enqueue(ctx context.Context, name string, urls []string, depth int) (*runstate.Run, error) {
	if name == "" {
		name = "run"
	}
	now := time.Now().UTC()
	run := runstate.Run{ID: newRunID(now), Name: name, Target: s.opts.Target.String(), MaxDepth: depth, Seeds: urls, CreatedAt: now}
	if err := s.opts.Runs.Create(ctx, run); err != nil {
		return nil, err
	}
	ids := make([]string, len(urls))
	recs := make([]*kgo.Record, len(urls))
	for i, u := range urls {
		job := crawl.Job{V: crawl.MessageVersion, ID: crawl.JobID(run.ID, "", u), Run: run.ID, Seed: u, URL: u,
			MaxDepth: depth, CreatedAt: now}
		b, err := json.Marshal(job)
		if err != nil {
			return nil, err
		}
		ids[i] = job.ID
		recs[i] = &kgo.Record{Topic: topics.Frontier, Key: job.Key(), Value: b}
	}
	if _, err := s.opts.Runs.Enqueue(ctx, run.ID, ids...); err != nil {
		return nil, err
	}
	if err := s.publish(ctx, recs); err != nil {
		return nil, fmt.Errorf("publishing seeds to %s: %w", topics.Frontier, err)
	}
	s.opts.Log.Info("run created", "run", run.ID, "seeds", len(urls), "max_depth", depth)
	created, err := s.opts.Runs.Get(ctx, run.ID)
	if err == nil && s.opts.Created != nil {
		s.opts.Created(created)
	}
	return created, err
}

// publish produces recs. A broker that lost the topics since Start (an
// in-memory stand-in restarted, or someone deleted them) gets them created
// again, and the records it refused are sent once more.
func (s *Server) publish(ctx context.Context, recs []*kgo.Record) error {
	var lost []*kgo.Record
	for _, r := range s.cl.ProduceSync(ctx, recs...) {
		switch {
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition) || errors.Is(r.Err, kerr.UnknownTopicID):
			lost = append(lost, r.Record)
		case r.Err != nil:
			return r.Err
		}
	}
	if len(lost) == 0 {
		return nil
	}
	s.opts.Log.Warn("Kafka no longer has the topics; creating them again", "records", len(lost))
	if err := topics.Ensure(ctx, s.cl, s.opts.Partitions); err != nil {
		return err
	}
	return s.cl.ProduceSync(ctx, lost...).FirstErr()
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.opts.Runs.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, runstate.ErrNotFound):
		writeError(w, http.StatusNotFound, "", "run %q not found", r.PathValue("id"))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "", "%v", err)
	default:
		writeJSON(w, http.StatusOK, run)
	}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("limit"), 10, 64)
	if err != nil || n <= 0 || n > 1000 {
		n = 20
	}
	runs, err := s.opts.Runs.List(r.Context(), n)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "%v", err)
		return
	}
	if runs == nil {
		runs = []*runstate.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

// LagReport is GET /api/v1/lag: every group's lag per partition.
type LagReport struct {
	Groups map[string][]topics.PartitionLag `json:"groups"`
}

// consumerGroups are the groups the API reports, with their topics.
var consumerGroups = []struct {
	group  string
	topics []string
}{
	{topics.WorkerGroup, []string{topics.Frontier, topics.Retry}},
	{topics.GraphWriterGroup, []string{topics.Results, topics.Edges}},
}

// Lag computes the report.
func (s *Server) Lag(ctx context.Context) (*LagReport, error) {
	rep := &LagReport{Groups: map[string][]topics.PartitionLag{}}
	for _, g := range consumerGroups {
		l, err := topics.Lag(ctx, s.adm, g.group, g.topics...)
		if err != nil {
			return nil, err
		}
		rep.Groups[g.group] = l
	}
	return rep, nil
}

func (s *Server) lag(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	rep, err := s.Lag(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
