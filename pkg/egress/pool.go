// Package egress is the worker's egress proxy pool: it sends each crawl
// request through one of N egress proxies (N egress IPs), choosing per
// request the healthy proxy whose pacing lets the request go soonest, then
// the one with fewest requests in flight. Pacing is a token bucket per
// (egress, target host), lowered on 429 and raised again after a quiet
// period, so a 429 slows only its own queue. Health is passive (a circuit
// breaker per proxy, and failures mark a proxy down at once) and active
// (its /healthz every second); a request that fails on a dead proxy is tried
// again on another.
//
// The reference crawler's fixed assignment, hash(hostname) % len(pool),
// stays available as Assignment "hash" so its experiment can be repeated
// side by side.
package egress

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// Assignment is how a request picks its proxy.
type Assignment string

const (
	// AssignPace picks per request: soonest allowed by pacing, then fewest
	// in flight, among healthy proxies.
	AssignPace Assignment = "pace"
	// AssignHash is the reference crawler's: one proxy per worker,
	// hash(hostname) % len(pool), no pacing, no failover.
	AssignHash Assignment = "hash"
)

// None is the egress label of a fetch that never reached an egress proxy
// (every proxy down, or the pool gave up waiting for one): metrics count it
// under this value, never under an empty one.
const None = "none"

// Validate says whether a is an assignment the pool knows.
func (a Assignment) Validate() error {
	if a != AssignPace && a != AssignHash {
		return fmt.Errorf("proxy assignment %q: use pace or hash", string(a))
	}
	return nil
}

// Scope is what a rate limit applies to.
type Scope string

const (
	// ScopeEgress: each egress has its own budget per host (the simulator,
	// sites you own: per-IP limits).
	ScopeEgress Scope = "egress"
	// ScopeClient: one budget per host shared by every egress. Open Library
	// publishes its quota per client (3 req/s with an identifying
	// User-Agent), so more egress IPs must not mean more requests.
	ScopeClient Scope = "client"
)

// Options configure a pool.
type Options struct {
	Proxies    []string // proxy URLs, http://host:port
	Assignment Assignment
	Scope      Scope
	Hostname   string  // for AssignHash (default: os.Hostname)
	Rate       float64 // requests/s per pacing queue; <= 0: no pacing
	Burst      int
	// QuietPeriod without a 429 before the rate is raised again.
	QuietPeriod     time.Duration
	HealthInterval  time.Duration
	BreakerFailures uint32 // consecutive failures that open a breaker (5)
	BreakerTimeout  time.Duration
	// MaxWait bounds how long a request waits while every proxy is down.
	MaxWait time.Duration
	// Redis, when set, holds the pacing state, shared by every worker
	// process; without it each process paces on its own.
	Redis      redis.UniversalClient
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions are a pool's defaults, which the worker's flags show; New
// fills every zero field from them but Rate (0: no pacing) and Scope.
func DefaultOptions() Options {
	return Options{Assignment: AssignPace, Rate: 3, Burst: 1, QuietPeriod: 2 * time.Second, HealthInterval: time.Second,
		BreakerFailures: 5, BreakerTimeout: 30 * time.Second, MaxWait: 30 * time.Second}
}

// Pool sends requests through the proxies.
type Pool struct {
	opts    Options
	members []*member
	fixed   *member // AssignHash
	mu      sync.Mutex
	shared  map[string]*pacer // ScopeClient: per host
	remote  *sharedPacing     // pacing state in Redis, when configured
	m       metrics
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type member struct {
	name      string
	proxy     *url.URL
	transport *http.Transport
	cb        *gobreaker.CircuitBreaker[*http.Response]
	inFlight  atomic.Int64
	down      atomic.Bool // marked by a failure, cleared by a health check
	mu        sync.Mutex
	pacers    map[string]*pacer
}

type metrics struct {
	breaker   *prometheus.GaugeVec
	pacing    *prometheus.GaugeVec
	inFlight  *prometheus.GaugeVec
	failovers prometheus.Counter
	wait      prometheus.Histogram
}

// ErrNoEgress is returned when no proxy could take a request in time.
var ErrNoEgress = errors.New("no healthy egress proxy")

// New builds a pool and starts its health checks; Close stops them.
func New(opts Options) (*Pool, error) {
	if len(opts.Proxies) == 0 {
		return nil, errors.New("egress pool: no proxies")
	}
	d := DefaultOptions()
	if opts.Assignment == "" {
		opts.Assignment = d.Assignment
	}
	if err := opts.Assignment.Validate(); err != nil {
		return nil, err
	}
	if opts.Scope == "" {
		opts.Scope = ScopeEgress
	}
	if opts.Scope != ScopeEgress && opts.Scope != ScopeClient {
		return nil, fmt.Errorf("politeness scope %q: use egress or client", opts.Scope)
	}
	if opts.Burst <= 0 {
		opts.Burst = d.Burst
	}
	if opts.QuietPeriod <= 0 {
		opts.QuietPeriod = d.QuietPeriod
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = d.HealthInterval
	}
	if opts.BreakerFailures == 0 {
		opts.BreakerFailures = d.BreakerFailures
	}
	if opts.BreakerTimeout <= 0 {
		opts.BreakerTimeout = d.BreakerTimeout
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = d.MaxWait
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, shared: map[string]*pacer{}}
	p.m = metrics{
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_egress_breaker_state",
			Help: "Circuit breaker per egress proxy: 0 closed, 1 half-open, 2 open."}, []string{"egress"}),
		pacing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_egress_pacing_rate_per_second",
			Help: "Current pacing rate per egress (\"all\" in client scope) and target host."}, []string{"egress", "host"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_egress_in_flight",
			Help: "Requests in flight per egress proxy."}, []string{"egress"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_egress_failovers_total",
			Help: "Requests sent again through another proxy after a proxy failed."}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crawl_egress_pacing_wait_seconds",
			Help: "Time a request waited for its pacing slot.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 11)}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.m.breaker, p.m.pacing, p.m.inFlight, p.m.failovers, p.m.wait)
	}
	if opts.Redis != nil && opts.Rate > 0 {
		p.remote = &sharedPacing{rdb: opts.Redis, base: time.Duration(float64(time.Second) / opts.Rate), quietPeriod: opts.QuietPeriod}
	}
	for _, raw := range opts.Proxies {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("proxy %q is not an http://host:port URL", raw)
		}
		p.members = append(p.members, p.newMember(u))
	}
	if opts.Assignment == AssignHash {
		host := opts.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		h := fnv.New32a()
		h.Write([]byte(host))
		p.fixed = p.members[int(h.Sum32())%len(p.members)]
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, m := range p.members {
		p.wg.Go(func() { p.healthLoop(ctx, m) })
	}
	return p, nil
}

func (p *Pool) newMember(u *url.URL) *member {
	m := &member{name: u.Host, proxy: u, pacers: map[string]*pacer{}}
	m.transport = &http.Transport{
		Proxy:                 http.ProxyURL(u),
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	failures := p.opts.BreakerFailures
	m.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        u.Host,
		MaxRequests: 1,
		Timeout:     p.opts.BreakerTimeout,
		// gobreaker's default trips on the 6th failure; trip on the 5th.
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A request that ran out of time or was cancelled says nothing
		// about the proxy.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			p.m.breaker.WithLabelValues(name).Set(float64(to))
			p.opts.Log.Warn("egress breaker", "egress", name, "from", from.String(), "to", to.String())
		},
	})
	p.m.breaker.WithLabelValues(u.Host).Set(0)
	return m
}

// Close stops the health checks and drops idle connections.
func (p *Pool) Close() {
	p.cancel()
	p.wg.Wait()
	for _, m := range p.members {
		m.transport.CloseIdleConnections()
	}
}

// healthLoop asks the proxy's /healthz every HealthInterval.
func (p *Pool) healthLoop(ctx context.Context, m *member) {
	client := &http.Client{Timeout: p.opts.HealthInterval}
	u := *m.proxy
	u.Path = "/healthz"
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		resp, err := client.Do(req)
		ok := err == nil && resp.StatusCode == http.StatusOK
		if resp != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if was := m.down.Swap(!ok); was != !ok {
			p.opts.Log.Info("egress health", "egress", m.name, "healthy", ok)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// available reports whether m may take a request now.
func (m *member) available() bool {
	return !m.down.Load() && m.cb.State() != gobreaker.StateOpen
}

// ErrWaitTooLong is returned when the pacing slot a request would get lies
// beyond its context's deadline: the request was not sent, and the caller
// may hand it back for later without counting an attempt.
var ErrWaitTooLong = errors.New("the next pacing slot is later than the request may wait")

// Fetch implements the worker's Fetcher: waiting for a pacing slot is
// bounded by req's context; timeout bounds the exchange from the moment
// the slot is granted, the response body included.
func (p *Pool) Fetch(req *http.Request, timeout time.Duration) (*http.Response, string, error) {
	if p.fixed != nil {
		resp, err := p.sendTimed(p.fixed, req, timeout)
		return resp, p.fixed.name, err
	}
	ctx := req.Context()
	host := req.URL.Host
	tried := map[*member]bool{}
	var lastErr error
	for range p.members {
		m, err := p.pick(ctx, host, tried)
		if err != nil {
			if lastErr != nil {
				err = fmt.Errorf("%w (last failure: %v)", err, lastErr)
			}
			return nil, None, err
		}
		resp, err := p.sendTimed(m, req, timeout)
		if err == nil {
			p.feedback(ctx, m, host, resp.StatusCode == http.StatusTooManyRequests)
			return resp, m.name, nil
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (req.Body != nil && req.GetBody == nil) {
			return nil, m.name, err // the site was slow, or the caller gave up: not the proxy's failure
		}
		// The proxy failed, not the site: try another one.
		m.down.Store(true)
		tried[m] = true
		lastErr = err
		p.m.failovers.Inc()
	}
	return nil, None, fmt.Errorf("%w: every proxy failed; last: %v", ErrNoEgress, lastErr)
}

// feedback lowers a queue's rate after a 429, or lets it recover.
func (p *Pool) feedback(ctx context.Context, m *member, host string, limited bool) {
	if p.remote != nil {
		if limited {
			if err := p.remote.throttled(ctx, paceKey(host, p.queueName(m))); err != nil {
				p.opts.Log.Warn("shared pacing", "err", err)
			}
		}
		return // recovery happens in the reserve script
	}
	pc := p.pacerFor(m, host)
	if limited {
		pc.throttled(time.Now())
	} else {
		pc.quiet(time.Now())
	}
	p.m.pacing.WithLabelValues(pc.label, host).Set(pc.limit())
}

// queueName is m's pacing queue: its own, or the client's in client scope.
func (p *Pool) queueName(m *member) string {
	if p.opts.Scope == ScopeClient {
		return "all"
	}
	return m.name
}

// sendTimed sends req through m within timeout, which goes on until the
// response body is closed.
func (p *Pool) sendTimed(m *member, req *http.Request, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	resp, err := p.send(m, req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = TimedBody(resp.Body, cancel)
	return resp, nil
}

// TimedBody is body ending its request's context (cancel) when closed: a
// timeout that covers reading the body.
func TimedBody(body io.ReadCloser, cancel context.CancelFunc) io.ReadCloser {
	return cancelOnClose{ReadCloser: body, cancel: cancel}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// send runs one request through m's breaker.
func (p *Pool) send(m *member, req *http.Request) (*http.Response, error) {
	m.inFlight.Add(1)
	p.m.inFlight.WithLabelValues(m.name).Inc()
	defer func() {
		m.inFlight.Add(-1)
		p.m.inFlight.WithLabelValues(m.name).Dec()
	}()
	return m.cb.Execute(func() (*http.Response, error) { return m.transport.RoundTrip(req) })
}

// pick chooses the member for a request to host and waits for its pacing
// slot. While no member is available it waits, bounded by MaxWait.
func (p *Pool) pick(ctx context.Context, host string, tried map[*member]bool) (*member, error) {
	deadline := time.Now().Add(p.opts.MaxWait)
	for {
		var cands []*member
		for _, m := range p.members {
			if !tried[m] && m.available() {
				cands = append(cands, m)
			}
		}
		if len(cands) > 0 {
			if p.remote != nil {
				m, err := p.reserveShared(ctx, host, cands)
				if err == nil || ctx.Err() != nil {
					return m, err
				}
				p.opts.Log.Warn("shared pacing unavailable; pacing in this process", "err", err)
			}
			return p.reserve(ctx, host, cands)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w within %v", ErrNoEgress, p.opts.MaxWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reserve takes the pacing slot that comes soonest (ties: fewest in
// flight), gives the others back, and waits for it.
func (p *Pool) reserve(ctx context.Context, host string, cands []*member) (*member, error) {
	now := time.Now()
	type choice struct {
		m *member
		r *rate.Reservation
		d time.Duration
	}
	var best *choice
	var others []*rate.Reservation
	seen := map[*pacer]bool{}
	for _, m := range cands {
		pc := p.pacerFor(m, host)
		if pc.lim == nil {
			if best == nil || m.inFlight.Load() < best.m.inFlight.Load() {
				best = &choice{m: m}
			}
			continue
		}
		if seen[pc] { // client scope: one shared queue
			if m.inFlight.Load() < best.m.inFlight.Load() {
				best.m = m
			}
			continue
		}
		seen[pc] = true
		r := pc.lim.ReserveN(now, 1)
		c := &choice{m: m, r: r, d: r.DelayFrom(now)}
		switch {
		case best == nil:
			best = c
		case c.d < best.d || (c.d == best.d && m.inFlight.Load() < best.m.inFlight.Load()):
			others = append(others, best.r)
			best = c
		default:
			others = append(others, r)
		}
	}
	for _, r := range others {
		if r != nil {
			r.CancelAt(now)
		}
	}
	if d, ok := ctx.Deadline(); ok && best.r != nil && now.Add(best.d).After(d) {
		best.r.CancelAt(now)
		return nil, fmt.Errorf("%w (%v)", ErrWaitTooLong, best.d.Round(time.Millisecond))
	}
	if best.d > 0 {
		p.m.wait.Observe(best.d.Seconds())
		t := time.NewTimer(best.d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			best.r.Cancel()
			return nil, ctx.Err()
		}
	}
	return best.m, nil
}

// reserveShared takes the earliest slot among the candidates' shared
// queues and waits for it.
func (p *Pool) reserveShared(ctx context.Context, host string, cands []*member) (*member, error) {
	keys := make([]string, len(cands))
	for i, m := range cands {
		keys[i] = paceKey(host, p.queueName(m))
	}
	i, delay, rate, err := p.remote.reserve(ctx, keys)
	if err != nil {
		return nil, err
	}
	m := cands[i]
	p.m.pacing.WithLabelValues(p.queueName(m), host).Set(rate)
	if d, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(d) {
		return nil, fmt.Errorf("%w (%v)", ErrWaitTooLong, delay.Round(time.Millisecond)) // the slot goes unused
	}
	if delay > 0 {
		p.m.wait.Observe(delay.Seconds())
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return m, nil
}

// pacerFor returns the pacing queue of (m, host), or of host alone in
// client scope.
func (p *Pool) pacerFor(m *member, host string) *pacer {
	if p.opts.Scope == ScopeClient {
		p.mu.Lock()
		defer p.mu.Unlock()
		pc, ok := p.shared[host]
		if !ok {
			pc = newPacer(p.opts, "all")
			p.shared[host] = pc
		}
		return pc
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	pc, ok := m.pacers[host]
	if !ok {
		pc = newPacer(p.opts, m.name)
		m.pacers[host] = pc
	}
	return pc
}
