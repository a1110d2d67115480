package olsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/crawlctl/crawlctl/pkg/openlibrary"
)

// Rule is one rate limit, keyed per client IP like Open Library's nginx
// limit_req zones. The first rule whose prefix and suffix match a path
// applies.
type Rule struct {
	Name      string  // metric label
	Prefix    string  // path prefix ("" matches all)
	Suffix    string  // path suffix ("" matches all)
	PerSecond float64 // sustained rate; <= 0 means no limit
	Burst     int
}

// JSONRule names the default rule of the JSON API (3 req/s per IP), the
// one a crawler meets.
const JSONRule = "json"

// DefaultRules are Open Library's published enforcement: JSON endpoints 180
// requests a minute with a small burst, HTML pages 1 a second.
func DefaultRules() []Rule {
	return []Rule{
		{Name: JSONRule, Suffix: ".json", PerSecond: 3, Burst: 5},
		{Name: "html", PerSecond: 1, Burst: 1},
	}
}

// ParseRule reads NAME:PREFIX:RATE[:BURST] (RATE per second), e.g.
// authors:/authors/:0.5:1. The rule matches paths that start with PREFIX.
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 || parts[0] == "" {
		return Rule{}, fmt.Errorf("rate rule %q is not NAME:PREFIX:RATE[:BURST]", s)
	}
	r := Rule{Name: parts[0], Prefix: parts[1], Burst: 1}
	var err error
	if r.PerSecond, err = strconv.ParseFloat(parts[2], 64); err != nil {
		return Rule{}, fmt.Errorf("rate rule %q: rate %q is not a number of requests a second", s, parts[2])
	}
	if len(parts) == 4 {
		if r.Burst, err = strconv.Atoi(parts[3]); err != nil || r.Burst < 1 {
			return Rule{}, fmt.Errorf("rate rule %q: burst %q is not a whole number of at least 1", s, parts[3])
		}
	}
	return r, nil
}

// Options configure the simulator.
type Options struct {
	Catalogue Catalogue
	Rules     []Rule
	// TimeFactor multiplies every rate (10 makes a run ten times faster).
	TimeFactor float64
	// NoLimits turns rate limiting off (benchmarks).
	NoLimits bool
	// Latency is added to every response, with up to Jitter more.
	Latency, Jitter time.Duration
	// Fault injection, as ratios of requests (0..1).
	ErrorRatio    float64 // 500 responses
	SlowRatio     float64 // responses delayed by SlowDelay
	SlowDelay     time.Duration
	TruncateRatio float64 // bodies cut in half
	// CrawlDelay, when set, is announced in robots.txt.
	CrawlDelay time.Duration
	// Disallow lists path prefixes robots.txt forbids (it always forbids
	// /admin).
	Disallow []string
}

// DefaultOptions is Open Library's behaviour at real speed.
func DefaultOptions() Options {
	return Options{Catalogue: DefaultCatalogue(), Rules: DefaultRules(), TimeFactor: 1, SlowDelay: 5 * time.Second}
}

// RuleRate is the rate of the named rule in requests a second per client
// IP, scaled by the time factor (0 when there is no such rule, or no
// limits): what a crawler paces each egress at to see no 429.
func (o Options) RuleRate(name string) float64 {
	if o.NoLimits {
		return 0
	}
	for _, r := range o.Rules {
		if r.Name == name {
			return r.PerSecond * cmp.Or(o.TimeFactor, 1)
		}
	}
	return 0
}

// Server serves the simulated catalogue.
type Server struct {
	opts     Options
	subjects map[string]string
	mux      *http.ServeMux

	mu       sync.Mutex
	limiters map[limiterKey]*rate.Limiter

	requests *prometheus.CounterVec
	limited  *prometheus.CounterVec
}

type limiterKey struct {
	ip   string
	rule int
}

// maxLimiters bounds the limiter table; past it the table starts over.
const maxLimiters = 100_000

// New returns a simulator registering its metrics with reg.
func New(opts Options, reg prometheus.Registerer) (*Server, error) {
	if err := opts.Catalogue.Validate(); err != nil {
		return nil, fmt.Errorf("simulator catalogue: %w", err)
	}
	if opts.TimeFactor <= 0 {
		return nil, fmt.Errorf("simulator time factor must be positive (got %g)", opts.TimeFactor)
	}
	for _, r := range []float64{opts.ErrorRatio, opts.SlowRatio, opts.TruncateRatio} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("simulator fault ratios must be between 0 and 1 (got %g)", r)
		}
	}
	s := &Server{
		opts:     opts,
		subjects: opts.Catalogue.SubjectSlugs(),
		mux:      http.NewServeMux(),
		limiters: map[limiterKey]*rate.Limiter{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_olsim_requests_total",
			Help: "Requests to the Open Library simulator by client IP, endpoint and status code.",
		}, []string{"client_ip", "endpoint", "code"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawl_olsim_rate_limited_total",
			Help: "Requests refused with 429 by client IP and rate rule.",
		}, []string{"client_ip", "rule"}),
	}
	if reg != nil {
		reg.MustRegister(s.requests, s.limited)
	}
	s.mux.HandleFunc("GET /robots.txt", s.robots)
	s.mux.HandleFunc("GET /works/{id}", s.work)
	s.mux.HandleFunc("GET /works/{id}/editions.json", s.editions)
	s.mux.HandleFunc("GET /books/{id}", s.edition)
	s.mux.HandleFunc("GET /authors/{id}", s.author)
	s.mux.HandleFunc("GET /authors/{id}/works.json", s.authorWorks)
	s.mux.HandleFunc("GET /subjects/{slug}", s.subject)
	s.mux.HandleFunc("GET /search.json", s.search)
	return s, nil
}

// recorder remembers the status for the metrics.
type recorder struct {
	http.ResponseWriter
	code     int
	truncate bool
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.truncate && len(b) > 1 {
		n, err := r.ResponseWriter.Write(b[:len(b)/2])
		if err == nil {
			err = fmt.Errorf("truncated by fault injection")
		}
		return n, err
	}
	return r.ResponseWriter.Write(b)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func endpointLabel(path string) string {
	if kind, _, ok := openlibrary.Endpoint(path); ok {
		return kind
	}
	if path == "/robots.txt" {
		return "robots"
	}
	return "other"
}

// ServeHTTP applies rate limits, latency and faults, then the catalogue.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		s.requests.WithLabelValues(ip, endpointLabel(r.URL.Path), strconv.Itoa(rec.code)).Inc()
	}()
	if !s.opts.NoLimits && r.URL.Path != "/robots.txt" {
		if rule, ok := s.allow(ip, r.URL.Path); !ok {
			s.limited.WithLabelValues(ip, rule).Inc()
			// Open Library's refusal: a JSON body and no Retry-After.
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(rec, `{"status": 429, "message": "Too Many Requests. Please wait and retry; use the data dumps for bulk access."}`)
			return
		}
	}
	delay := s.opts.Latency
	if s.opts.Jitter > 0 {
		delay += rand.N(s.opts.Jitter)
	}
	if s.opts.SlowRatio > 0 && rand.Float64() < s.opts.SlowRatio {
		delay += s.opts.SlowDelay
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if s.opts.ErrorRatio > 0 && rand.Float64() < s.opts.ErrorRatio {
		http.Error(rec, "simulated server error", http.StatusInternalServerError)
		return
	}
	rec.truncate = s.opts.TruncateRatio > 0 && rand.Float64() < s.opts.TruncateRatio
	s.mux.ServeHTTP(rec, r)
}

// allow takes a token from the client's bucket for the first matching rule.
func (s *Server) allow(ip, path string) (string, bool) {
	for i, rule := range s.opts.Rules {
		if !strings.HasPrefix(path, rule.Prefix) || !strings.HasSuffix(path, rule.Suffix) {
			continue
		}
		if rule.PerSecond <= 0 {
			return rule.Name, true
		}
		k := limiterKey{ip, i}
		s.mu.Lock()
		l, ok := s.limiters[k]
		if !ok {
			if len(s.limiters) >= maxLimiters {
				clear(s.limiters)
			}
			l = rate.NewLimiter(rate.Limit(rule.PerSecond*s.opts.TimeFactor), max(1, rule.Burst))
			s.limiters[k] = l
		}
		s.mu.Unlock()
		return rule.Name, l.Allow()
	}
	return "", true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `{"error": "notfound"}`)
}

// olid parses OL{n}{suffix}.json (or without .json when html is allowed).
func olid(raw string, suffix byte) (uint64, bool) {
	s, ok := strings.CutSuffix(raw, ".json")
	if !ok || len(s) < 4 || !strings.HasPrefix(s, "OL") || s[len(s)-1] != suffix {
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:len(s)-1], 10, 64)
	return n, err == nil && n > 0 && n < 1<<40
}

func (s *Server) robots(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintln(w, "User-agent: *")
	if s.opts.CrawlDelay > 0 {
		fmt.Fprintf(w, "Crawl-delay: %g\n", s.opts.CrawlDelay.Seconds())
	}
	for _, p := range append([]string{"/admin"}, s.opts.Disallow...) {
		fmt.Fprintln(w, "Disallow: "+p)
	}
	fmt.Fprintln(w, "Allow: /")
}

type ref struct {
	Key string `json:"key"`
}

type authorRole struct {
	Author ref `json:"author"`
	Type   ref `json:"type"`
}

func authorKey(a uint64) string  { return fmt.Sprintf("/authors/OL%dA", a) }
func workKey(m uint64) string    { return fmt.Sprintf("/works/OL%dW", m) }
func editionKey(x uint64) string { return fmt.Sprintf("/books/OL%dM", x) }

func (s *Server) workDoc(m uint64) map[string]any {
	c := s.opts.Catalogue
	return map[string]any{
		"key":      workKey(m),
		"title":    c.WorkTitle(m),
		"type":     ref{"/type/work"},
		"authors":  []authorRole{{Author: ref{authorKey(m / worksSlot)}, Type: ref{"/type/author_role"}}},
		"subjects": c.WorkSubjects(m),
		"revision": 1 + c.h(7, m)%50,
	}
}

func (s *Server) editionDoc(m uint64, e int) map[string]any {
	c := s.opts.Catalogue
	x := m*editionSlot + uint64(e)
	return map[string]any{
		"key":             editionKey(x),
		"title":           c.WorkTitle(m),
		"type":            ref{"/type/edition"},
		"authors":         []ref{{authorKey(m / worksSlot)}},
		"works":           []ref{{workKey(m)}},
		"subjects":        c.WorkSubjects(m),
		"publish_date":    strconv.Itoa(1900 + int(c.h(8, x)%125)),
		"number_of_pages": 80 + c.h(9, x)%700,
	}
}

func (s *Server) work(w http.ResponseWriter, r *http.Request) {
	m, ok := olid(r.PathValue("id"), 'W')
	if !ok || !s.opts.Catalogue.WorkExists(m) {
		notFound(w)
		return
	}
	writeJSON(w, s.workDoc(m))
}

func (s *Server) editions(w http.ResponseWriter, r *http.Request) {
	m, ok := olid(r.PathValue("id")+".json", 'W')
	if !ok || !s.opts.Catalogue.WorkExists(m) {
		notFound(w)
		return
	}
	n := s.opts.Catalogue.EditionCount(m)
	entries := make([]map[string]any, n)
	for e := range n {
		entries[e] = s.editionDoc(m, e)
	}
	writeJSON(w, map[string]any{
		"links":   map[string]string{"self": workKey(m) + "/editions.json", "work": workKey(m)},
		"size":    n,
		"entries": entries,
	})
}

func (s *Server) edition(w http.ResponseWriter, r *http.Request) {
	x, ok := olid(r.PathValue("id"), 'M')
	m, e := x/editionSlot, int(x%editionSlot)
	if !ok || !s.opts.Catalogue.WorkExists(m) || e >= s.opts.Catalogue.EditionCount(m) {
		notFound(w)
		return
	}
	writeJSON(w, s.editionDoc(m, e))
}

func (s *Server) author(w http.ResponseWriter, r *http.Request) {
	a, ok := olid(r.PathValue("id"), 'A')
	if !ok {
		notFound(w)
		return
	}
	c := s.opts.Catalogue
	writeJSON(w, map[string]any{
		"key":        authorKey(a),
		"name":       c.AuthorName(a),
		"type":       ref{"/type/author"},
		"birth_date": strconv.Itoa(1700 + int(c.h(10, a)%300)),
		"work_count": c.WorkCount(a),
	})
}

func (s *Server) authorWorks(w http.ResponseWriter, r *http.Request) {
	a, ok := olid(r.PathValue("id")+".json", 'A')
	if !ok {
		notFound(w)
		return
	}
	c := s.opts.Catalogue
	n := c.WorkCount(a)
	entries := make([]map[string]any, n)
	for j := range n {
		entries[j] = s.workDoc(a*worksSlot + uint64(j))
	}
	writeJSON(w, map[string]any{
		"links":   map[string]string{"self": authorKey(a) + "/works.json", "author": authorKey(a)},
		"size":    n,
		"entries": entries,
	})
}

type listedWork struct {
	Key     string `json:"key"`
	Title   string `json:"title"`
	Authors []struct {
		Key  string `json:"key"`
		Name string `json:"name"`
	} `json:"authors"`
}

func (s *Server) listWorks(h func(j uint64) uint64, n int) []listedWork {
	c := s.opts.Catalogue
	out := make([]listedWork, n)
	for j := range n {
		m := someWork(h(uint64(j)))
		out[j] = listedWork{Key: workKey(m), Title: c.WorkTitle(m)}
		out[j].Authors = append(out[j].Authors, struct {
			Key  string `json:"key"`
			Name string `json:"name"`
		}{authorKey(m / worksSlot), c.AuthorName(m / worksSlot)})
	}
	return out
}

func (s *Server) subject(w http.ResponseWriter, r *http.Request) {
	slug, ok := strings.CutSuffix(r.PathValue("slug"), ".json")
	if !ok {
		notFound(w)
		return
	}
	c := s.opts.Catalogue
	name, known := s.subjects[slug]
	n := 0
	if known {
		n = c.SubjectWorks
	} else {
		name = slug
	}
	writeJSON(w, map[string]any{
		"key":          "/subjects/" + slug,
		"name":         name,
		"subject_type": "subject",
		"work_count":   n,
		"works":        s.listWorks(func(j uint64) uint64 { return c.hs(slug, 11, j) }, n),
	})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	c := s.opts.Catalogue
	n := c.SearchResults
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l >= 0 && l < n {
		n = l
	}
	if q == "" {
		n = 0
	}
	works := s.listWorks(func(j uint64) uint64 { return c.hs(q, 12, j) }, n)
	docs := make([]map[string]any, n)
	for i, lw := range works {
		docs[i] = map[string]any{"key": lw.Key, "title": lw.Title, "author_key": []string{strings.TrimPrefix(lw.Authors[0].Key, "/authors/")}}
	}
	writeJSON(w, map[string]any{"numFound": n, "start": 0, "numFoundExact": true, "q": q, "docs": docs})
}
