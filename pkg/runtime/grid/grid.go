// Package grid is the browser grid proxy (`crawlctl run grid`): Playwright
// clients connect with chromium.connect("ws://host:8080"), the grid picks a
// browser worker (lifetime-first, pkg/gridregistry), dials it and relays
// the session both ways. With no free worker a client waits in a bounded
// FIFO queue up to the select timeout, then gets 503; a full queue gets
// 429 at once. A worker reaching its lifetime limit is told to drain and
// restart. Workers are health-checked actively and passively behind a
// circuit breaker each.
package grid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/hotrestart"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/wsrelay"
)

// Browsers a client may ask for with ?browser=.
var Browsers = []string{"chromium", "firefox", "webkit"}

// Options configure a grid proxy.
type Options struct {
	Registry gridregistry.Registry
	// Workers are control URLs (http://host:port) of browser workers to
	// poll and register, for a grid without a shared registry.
	Workers []string
	// Token, when set, is required of clients (?token= or Authorization:
	// Bearer) and passed to workers. It guards every endpoint but /healthz
	// and /readyz (the probes send none).
	Token string
	// MetricsPublic leaves GET /metrics and /metrics/prometheus open with a
	// Token, for a Prometheus that scrapes without one.
	MetricsPublic bool
	// AllowedOrigins, when set, are the only Origin values accepted (a
	// request without Origin, as Playwright clients send, is accepted).
	AllowedOrigins []string
	// SelectTimeout bounds how long a client waits for a worker (5 s).
	SelectTimeout time.Duration
	// QueueSize bounds the clients waiting; one more gets 429.
	QueueSize int
	// HealthInterval is how often each worker is checked (2 s).
	HealthInterval time.Duration
	// DialAttempts bounds the workers tried for one session (3).
	DialAttempts int
	Relay        wsrelay.Options
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// DefaultOptions are a grid proxy's defaults, which its flags show; New fills every
// zero field from them.
func DefaultOptions() Options {
	return Options{
		SelectTimeout:  5 * time.Second,
		QueueSize:      100,
		HealthInterval: 2 * time.Second,
		DialAttempts:   3,
		Relay:          wsrelay.DefaultOptions(),
	}
}

// Grid is a grid proxy.
type Grid struct {
	opts     Options
	upgrader *websocket.Upgrader
	health   *health
	// Sessions are the live relayed sessions (a drain waits for them).
	Sessions hotrestart.Sessions

	qmu   sync.Mutex
	queue []*waiter
	freed chan struct{} // a session ended here: the head waiter tries again

	lmu   sync.Mutex
	local map[string]map[string]struct{} // worker → sessions of this proxy

	m metrics
}

type waiter struct{ turn chan struct{} }

// New checks opts and builds a grid.
func New(opts Options) (*Grid, error) {
	if opts.Registry == nil {
		return nil, errors.New("grid: no registry")
	}
	d := DefaultOptions()
	if opts.SelectTimeout <= 0 {
		opts.SelectTimeout = d.SelectTimeout
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = d.QueueSize
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = d.HealthInterval
	}
	if opts.DialAttempts <= 0 {
		opts.DialAttempts = d.DialAttempts
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	g := &Grid{opts: opts, freed: make(chan struct{}, 1), local: map[string]map[string]struct{}{}}
	g.upgrader = wsrelay.Upgrader() // ServeSession checks the Origin itself
	g.health = newHealth(opts, g.command)
	g.m = newMetrics(g)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.m.collectors()...)
	}
	return g, nil
}

// Run keeps the grid's background work going until ctx ends: health
// checks (and, with Workers, their registration) and lease renewal.
func (g *Grid) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { g.health.run(ctx) })
	wg.Go(func() { g.renewLeases(ctx) })
	wg.Wait()
}

func (g *Grid) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || len(g.opts.AllowedOrigins) == 0 || slices.Contains(g.opts.AllowedOrigins, origin)
}

// errBody writes the grid's JSON error, the shape the seed documents.
func errBody(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q}}`+"\n", code, msg)
}

// unauthorized is the message of a 401.
const unauthorized = "a valid token is required (?token= or Authorization: Bearer)"

var (
	errQueueFull = errors.New("queue full")
	errTimeout   = errors.New("no available servers")
)

// ServeSession handles one client: pick, dial (another worker if that
// fails), upgrade, relay.
func (g *Grid) ServeSession(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		errBody(w, http.StatusBadRequest, "this is a Playwright grid: connect with chromium.connect(\"ws://...\")")
		return
	}
	if !serve.Authorized(r, g.opts.Token) {
		g.m.sessions.WithLabelValues("unauthorized").Inc()
		errBody(w, http.StatusUnauthorized, unauthorized)
		return
	}
	if !g.checkOrigin(r) {
		g.m.sessions.WithLabelValues("forbidden_origin").Inc()
		errBody(w, http.StatusForbidden, "origin not allowed")
		return
	}
	browser := r.URL.Query().Get("browser")
	if browser == "" {
		browser = "chromium"
	}
	if !slices.Contains(Browsers, browser) {
		errBody(w, http.StatusBadRequest, fmt.Sprintf("unknown browser %q: use one of %s", browser, strings.Join(Browsers, ", ")))
		return
	}
	session := newSessionID()
	start := time.Now()
	headers := wsrelay.ForwardHeaders(r.Header, "Authorization")
	if g.opts.Token != "" {
		headers.Set("Authorization", "Bearer "+g.opts.Token)
	}
	var tried []string
	for {
		sel, err := g.acquire(r.Context(), gridregistry.Request{Browser: browser, Session: session}, tried, start)
		if err != nil {
			g.refuse(w, err, start)
			return
		}
		g.opts.Log.Debug("worker chosen", "worker", sel.ID, "lifetime", sel.Lifetime, "at_limit", sel.AtLimit)
		next, resp, err := wsrelay.Dial(r.Context(), sel.Endpoint, headers, websocket.Subprotocols(r), g.opts.Relay)
		if err != nil && resp != nil && resp.StatusCode == http.StatusServiceUnavailable && time.Since(start) < g.opts.SelectTimeout {
			// The worker is healthy but still counts a session that just
			// ended here (its side of the close lags ours): ask again soon.
			g.cancel(sel.ID, session)
			g.m.busyRetries.Inc()
			g.opts.Log.Debug("worker busy; asking again", "worker", sel.ID)
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
			}
			continue
		}
		if err != nil {
			g.cancel(sel.ID, session)
			g.health.failed(sel.ID, err)
			g.m.dialFailures.Inc()
			g.opts.Log.Warn("dialing a browser worker; trying another", "worker", sel.ID, "err", err)
			tried = append(tried, sel.ID)
			if len(tried) >= g.opts.DialAttempts {
				g.refuse(w, errTimeout, start)
				return
			}
			continue
		}
		g.health.succeeded(sel.ID)
		if sel.AtLimit {
			go g.command(sel.WorkerInfo)
		}
		g.m.queueWait.Observe(time.Since(start).Seconds())
		g.relay(w, r, next, sel.ID, session)
		return
	}
}

func (g *Grid) refuse(w http.ResponseWriter, err error, start time.Time) {
	g.m.queueWait.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, errQueueFull):
		g.m.sessions.WithLabelValues("queue_full").Inc()
		errBody(w, http.StatusTooManyRequests, "Too many clients waiting for a browser; retry later")
	case errors.Is(err, errTimeout), errors.Is(err, gridregistry.ErrNoWorker):
		g.m.sessions.WithLabelValues("no_worker").Inc()
		errBody(w, http.StatusServiceUnavailable, "No available servers")
	case errors.Is(err, context.Canceled):
		g.m.sessions.WithLabelValues("client_gone").Inc()
	default:
		g.m.sessions.WithLabelValues("error").Inc()
		g.opts.Log.Error("selecting a browser worker", "err", err)
		errBody(w, http.StatusServiceUnavailable, "No available servers")
	}
}

func (g *Grid) relay(w http.ResponseWriter, r *http.Request, next *websocket.Conn, worker, session string) {
	defer g.release(worker, session)
	var h http.Header
	if p := next.Subprotocol(); p != "" {
		h = http.Header{"Sec-Websocket-Protocol": {p}}
	}
	c, err := g.upgrader.Upgrade(w, r, h)
	if err != nil {
		next.Close()
		g.m.sessions.WithLabelValues("handshake_failed").Inc()
		return
	}
	g.m.sessions.WithLabelValues("served").Inc()
	done := g.Sessions.Add(c.NetConn())
	defer done()
	g.m.live.Inc()
	defer g.m.live.Dec()
	up, down := wsrelay.Relay(c, next, g.opts.Relay)
	g.m.bytes.WithLabelValues("to_worker").Add(float64(up))
	g.m.bytes.WithLabelValues("to_client").Add(float64(down))
}

// acquire selects a worker, waiting its turn in the FIFO queue while none
// is free. A client arriving with nobody waiting tries at once.
func (g *Grid) acquire(ctx context.Context, req gridregistry.Request, tried []string, start time.Time) (gridregistry.Selection, error) {
	deadline := time.NewTimer(g.opts.SelectTimeout - time.Since(start))
	defer deadline.Stop()
	g.qmu.Lock()
	if len(g.queue) == 0 {
		g.qmu.Unlock()
		sel, err := g.selectWorker(ctx, req, tried)
		if !errors.Is(err, gridregistry.ErrNoWorker) {
			return sel, err
		}
		g.qmu.Lock()
	}
	if len(g.queue) >= g.opts.QueueSize {
		g.qmu.Unlock()
		return gridregistry.Selection{}, errQueueFull
	}
	me := &waiter{turn: make(chan struct{})}
	g.queue = append(g.queue, me)
	if len(g.queue) == 1 {
		close(me.turn)
	}
	g.m.queued.Inc()
	g.qmu.Unlock()
	defer g.leave(me)

	select {
	case <-me.turn:
	case <-deadline.C:
		return gridregistry.Selection{}, errTimeout
	case <-ctx.Done():
		return gridregistry.Selection{}, ctx.Err()
	}
	poll := time.NewTicker(50 * time.Millisecond) // other proxies and restarting workers free slots too
	defer poll.Stop()
	for {
		sel, err := g.selectWorker(ctx, req, tried)
		if !errors.Is(err, gridregistry.ErrNoWorker) {
			return sel, err
		}
		select {
		case <-g.freed:
		case <-poll.C:
		case <-deadline.C:
			return gridregistry.Selection{}, errTimeout
		case <-ctx.Done():
			return gridregistry.Selection{}, ctx.Err()
		}
	}
}

// leave takes w out of the queue and, if it was first, gives the next
// waiter its turn.
func (g *Grid) leave(w *waiter) {
	g.qmu.Lock()
	defer g.qmu.Unlock()
	g.m.queued.Dec()
	i := slices.Index(g.queue, w)
	if i < 0 {
		return
	}
	g.queue = slices.Delete(g.queue, i, i+1)
	if i == 0 && len(g.queue) > 0 {
		close(g.queue[0].turn)
	}
}

func (g *Grid) selectWorker(ctx context.Context, req gridregistry.Request, tried []string) (gridregistry.Selection, error) {
	req.Exclude = append(g.health.down(), tried...)
	sel, err := g.opts.Registry.Select(ctx, req)
	if err != nil {
		return sel, err
	}
	g.lmu.Lock()
	if g.local[sel.ID] == nil {
		g.local[sel.ID] = map[string]struct{}{}
	}
	g.local[sel.ID][req.Session] = struct{}{}
	g.lmu.Unlock()
	return sel, nil
}

// release ends a session's lease (on every exit path) and wakes the
// queue's head.
func (g *Grid) release(worker, session string) {
	g.end(worker, session, g.opts.Registry.Release)
	select {
	case g.freed <- struct{}{}:
	default:
	}
}

// cancel undoes a selection whose session never started.
func (g *Grid) cancel(worker, session string) { g.end(worker, session, g.opts.Registry.Cancel) }

// end stops renewing a session's lease and tells the registry, by release
// or cancel.
func (g *Grid) end(worker, session string, tell func(ctx context.Context, worker, session string) error) {
	g.lmu.Lock()
	delete(g.local[worker], session)
	g.lmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tell(ctx, worker, session); err != nil {
		g.opts.Log.Warn("ending a session in the registry; its lease will expire", "worker", worker, "err", err)
	}
}

// renewLeases keeps this proxy's live sessions counted; if the proxy dies
// they expire with their leases.
func (g *Grid) renewLeases(ctx context.Context) {
	t := time.NewTicker(gridregistry.DefaultPolicy.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.lmu.Lock()
		live := map[string][]string{}
		for w, ss := range g.local {
			for s := range ss {
				live[w] = append(live[w], s)
			}
		}
		g.lmu.Unlock()
		if err := g.opts.Registry.Renew(ctx, live); err != nil {
			g.opts.Log.Warn("renewing session leases", "err", err)
		}
	}
}

// command tells a worker at its lifetime limit to drain and restart.
func (g *Grid) command(w gridregistry.WorkerInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Control+"/shutdown", nil)
	if err != nil {
		return
	}
	if g.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.opts.Token)
	}
	resp, err := g.health.client.Do(req)
	if err != nil {
		g.opts.Log.Warn("sending the shutdown command; the worker restarts on its own at its limit", "worker", w.ID, "err", err)
		return
	}
	resp.Body.Close()
	g.m.restarts.Inc()
	g.opts.Log.Info("worker at its lifetime limit told to restart", "worker", w.ID)
}

func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
