// Package browser is the browser worker runtime (`crawlctl run browser`):
// it supervises one Playwright browser server (Node.js running
// playwright-core's launchServer with the system Chromium), relays grid
// sessions to it within MAX_CONCURRENT_SESSIONS, registers and heartbeats
// in the grid registry, and after MAX_LIFETIME_SESSIONS (or on the grid's
// shutdown command) drains, restarts the browser itself and registers
// afresh; no container restart needed.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/hotrestart"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/wsrelay"
)

// Options configure a browser worker.
type Options struct {
	ID      string
	Browser string // chromium (firefox and webkit need Playwright's own builds)
	Runtime playwright.Runtime
	// Args are the browser's flags (ChromiumArgs for Chromium).
	Args []string
	// Advertise is the host:port the grid reaches this worker at.
	Advertise     string
	MaxConcurrent int
	MaxLifetime   int
	// DrainTimeout bounds how long live sessions may finish before a
	// restart or exit closes them.
	DrainTimeout time.Duration
	// HeartbeatInterval is how often the registry hears from the worker.
	HeartbeatInterval time.Duration
	// Registry, when set, is where the worker registers; without one a
	// grid proxy lists the worker itself (--worker) and polls /status.
	Registry gridregistry.Registry
	// Token, when set, is required of sessions and commands.
	Token      string
	Relay      wsrelay.Options
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions are a browser worker's defaults, which its flags show;
// New fills the zero browser and timings from them.
func DefaultOptions() Options {
	return Options{Browser: "chromium", MaxConcurrent: 5, MaxLifetime: 50, DrainTimeout: 30 * time.Second,
		HeartbeatInterval: 5 * time.Second, Relay: wsrelay.DefaultOptions()}
}

// Status is what GET /status answers: the registration and the counts.
type Status struct {
	gridregistry.WorkerInfo
	Status     gridregistry.Status `json:"status"`
	Active     int                 `json:"active"`
	Lifetime   int                 `json:"lifetime"`
	Generation int                 `json:"generation"`
}

// Worker is a running browser worker.
type Worker struct {
	opts     Options
	info     gridregistry.WorkerInfo
	upgrader *websocket.Upgrader
	sessions hotrestart.Sessions
	restartc chan string // reason

	mu         sync.Mutex
	srv        *server
	restarting bool // a restart is pending or under way
	status     gridregistry.Status
	active     int
	lifetime   int
	generation int

	m struct {
		sessions *prometheus.CounterVec
		active   prometheus.GaugeFunc
		lifetime prometheus.GaugeFunc
		restarts *prometheus.CounterVec
	}
}

// New checks opts and builds a worker; Run starts it.
func New(opts Options) (*Worker, error) {
	d := DefaultOptions()
	if opts.Browser == "" {
		opts.Browser = d.Browser
	}
	if opts.MaxConcurrent < 1 || opts.MaxLifetime < 1 {
		return nil, fmt.Errorf("max concurrent (%d) and max lifetime (%d) sessions must be at least 1", opts.MaxConcurrent, opts.MaxLifetime)
	}
	if opts.Advertise == "" {
		return nil, errors.New("the advertised address is empty: set --advertise host:port")
	}
	if opts.ID == "" {
		opts.ID = strings.ReplaceAll(opts.Advertise, ":", "-")
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = d.DrainTimeout
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = d.HeartbeatInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	w := &Worker{
		opts: opts,
		info: gridregistry.WorkerInfo{ID: opts.ID, Endpoint: "ws://" + opts.Advertise + "/", Control: "http://" + opts.Advertise,
			Browser: opts.Browser, MaxConcurrent: opts.MaxConcurrent, MaxLifetime: opts.MaxLifetime},
		upgrader: wsrelay.Upgrader(),
		restartc: make(chan string, 1),
		status:   gridregistry.Draining, // until the browser runs
	}
	w.m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_browser_sessions_total",
		Help: "Sessions by outcome: served, refused (full, draining), dial_failed."}, []string{"outcome"})
	w.m.active = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crawl_browser_active_sessions",
		Help: "Live sessions."}, func() float64 { return float64(w.snapshot().Active) })
	w.m.lifetime = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crawl_browser_lifetime_sessions",
		Help: "Sessions since the browser started."}, func() float64 { return float64(w.snapshot().Lifetime) })
	w.m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_browser_restarts_total",
		Help: "Browser restarts by reason: lifetime, command, crash."}, []string{"reason"})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.m.sessions, w.m.active, w.m.lifetime, w.m.restarts)
	}
	return w, nil
}

func (w *Worker) snapshot() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Status{WorkerInfo: w.info, Status: w.status, Active: w.active, Lifetime: w.lifetime, Generation: w.generation}
}

// Handler serves sessions (any path, WebSocket), GET /status, POST
// /shutdown, /healthz, /readyz and /metrics (g).
func (w *Worker) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock() // a browser being restarted is not a fault
		ok := w.restarting || (w.srv != nil && w.srv.alive())
		w.mu.Unlock()
		if !ok {
			http.Error(rw, "browser not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if w.snapshot().Status != gridregistry.Available {
			http.Error(rw, "not taking sessions", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(w.snapshot())
	})
	mux.HandleFunc("POST /shutdown", func(rw http.ResponseWriter, r *http.Request) {
		if !serve.Authorized(r, w.opts.Token) {
			http.Error(rw, "a valid token is required", http.StatusUnauthorized)
			return
		}
		w.requestRestart("command")
		rw.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(rw, `{"status":"draining"}`)
	})
	if g != nil {
		serve.Metrics(mux, "/metrics", g)
	}
	mux.HandleFunc("/", w.serveSession)
	return mux
}

// requestRestart marks the worker draining at once (no new session) and
// asks the run loop to restart the browser. Requests while one is pending
// or under way are the same restart.
func (w *Worker) requestRestart(reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.restarting {
		return
	}
	w.status, w.restarting = gridregistry.Draining, true
	w.restartc <- reason // never blocks: restarting guards the one slot
}

func (w *Worker) serveSession(rw http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(rw, "this is a Playwright browser endpoint: connect with a WebSocket (chromium.connect)", http.StatusBadRequest)
		return
	}
	if !serve.Authorized(r, w.opts.Token) {
		http.Error(rw, "a valid token is required", http.StatusUnauthorized)
		return
	}
	w.mu.Lock()
	if w.status != gridregistry.Available || w.srv == nil || w.active >= w.opts.MaxConcurrent || w.lifetime >= w.opts.MaxLifetime {
		w.mu.Unlock()
		w.m.sessions.WithLabelValues("refused").Inc()
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(rw, `{"error":{"code":503,"message":"worker is full or draining"}}`)
		return
	}
	w.active++
	w.lifetime++
	endpoint := w.srv.endpoint
	w.mu.Unlock()
	defer w.endSession()

	next, _, err := wsrelay.Dial(r.Context(), endpoint, wsrelay.ForwardHeaders(r.Header, "Authorization"), websocket.Subprotocols(r), w.opts.Relay)
	if err != nil {
		w.m.sessions.WithLabelValues("dial_failed").Inc()
		w.opts.Log.Warn("dialing the browser server", "err", err)
		http.Error(rw, "the browser is not answering", http.StatusBadGateway)
		return
	}
	var h http.Header
	if p := next.Subprotocol(); p != "" {
		h = http.Header{"Sec-Websocket-Protocol": {p}}
	}
	c, err := w.upgrader.Upgrade(rw, r, h)
	if err != nil {
		next.Close()
		return
	}
	w.m.sessions.WithLabelValues("served").Inc()
	done := w.sessions.Add(c.NetConn())
	defer done()
	wsrelay.Relay(c, next, w.opts.Relay)
}

func (w *Worker) endSession() {
	w.mu.Lock()
	w.active--
	spent := w.lifetime >= w.opts.MaxLifetime && w.active == 0
	w.mu.Unlock()
	if spent { // the grid's command may be lost: restart on our own too
		w.requestRestart("lifetime")
	}
}

// Run starts the browser, serves ln and keeps the registration fresh until
// ctx ends; then it drains (live sessions get DrainTimeout) and stops the
// browser.
func (w *Worker) Run(ctx context.Context, ln net.Listener, g prometheus.Gatherer) error {
	if err := w.startBrowser(ctx); err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: w.Handler(g), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	w.opts.Log.Info("browser worker serving", "addr", ln.Addr().String(), "endpoint", w.info.Endpoint,
		"max_concurrent", w.opts.MaxConcurrent, "max_lifetime", w.opts.MaxLifetime)
	if err := w.register(ctx, true); err != nil {
		w.opts.Log.Warn("registering with the grid registry; retrying at the next heartbeat", "err", err)
	}
	// Heartbeats go on while the browser restarts: a draining worker that
	// went quiet would look dead, and the registry would let another
	// worker drain beside it.
	hbCtx, stopHeartbeats := context.WithCancel(ctx)
	var heartbeats sync.WaitGroup
	heartbeats.Go(func() {
		tick := time.NewTicker(w.opts.HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-tick.C:
				w.heartbeat(hbCtx)
			}
		}
	})
	// Before the worker leaves the registry: a heartbeat after that would
	// register it again.
	quiet := func() { stopHeartbeats(); heartbeats.Wait() }
	defer quiet()
	for {
		w.mu.Lock()
		exited := w.srv.exited
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			quiet()
			w.stop(httpSrv)
			return nil
		case err := <-errc:
			quiet()
			w.stop(httpSrv)
			return fmt.Errorf("browser worker server: %w", err)
		case reason := <-w.restartc:
			if err := w.restart(ctx, reason); err != nil {
				return err
			}
		case <-exited:
			w.opts.Log.Error("the browser server exited; restarting it")
			w.requestRestart("crash") // no new session meanwhile
			reason := <-w.restartc    // this one, or the one already pending
			if err := w.restart(ctx, reason); err != nil {
				return err
			}
		}
	}
}

func (w *Worker) startBrowser(ctx context.Context) error {
	srv, err := startServer(ctx, w.opts.Runtime, w.opts.Browser, w.opts.Args, w.opts.Log)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.srv, w.status, w.lifetime, w.restarting = srv, gridregistry.Available, 0, false
	w.generation++
	w.mu.Unlock()
	return nil
}

func (w *Worker) register(ctx context.Context, reset bool) error {
	if w.opts.Registry == nil {
		return nil
	}
	return w.opts.Registry.Register(ctx, w.info, reset)
}

func (w *Worker) heartbeat(ctx context.Context) {
	if w.opts.Registry == nil {
		return
	}
	err := w.opts.Registry.Heartbeat(ctx, w.info.ID)
	if errors.Is(err, gridregistry.ErrUnknownWorker) {
		err = w.register(ctx, false)
	}
	if err != nil {
		w.opts.Log.Warn("heartbeat to the grid registry", "err", err)
	}
}

// waitIdle waits until no session is live (admitted ones count from the
// moment they are let in, before their relay starts) or timeout passes,
// then closes what is left.
func (w *Worker) waitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for w.snapshot().Active > 0 {
		if time.Now().After(deadline) {
			w.opts.Log.Warn("drain deadline passed; closing live sessions", "sessions", w.sessions.Len())
			w.sessions.CloseAll()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart drains, restarts the browser and registers afresh.
func (w *Worker) restart(ctx context.Context, reason string) error {
	w.opts.Log.Info("draining to restart the browser", "reason", reason, "lifetime", w.snapshot().Lifetime)
	if w.opts.Registry != nil {
		if err := w.opts.Registry.SetStatus(ctx, w.info.ID, gridregistry.Draining); err != nil && !errors.Is(err, gridregistry.ErrUnknownWorker) {
			w.opts.Log.Warn("marking draining in the registry", "err", err)
		}
	}
	w.waitIdle(w.opts.DrainTimeout)
	w.mu.Lock()
	old := w.srv
	w.mu.Unlock()
	old.stop(5 * time.Second)
	if err := w.startBrowser(ctx); err != nil {
		return fmt.Errorf("restarting the browser: %w", err)
	}
	w.m.restarts.WithLabelValues(reason).Inc()
	if err := w.register(ctx, true); err != nil {
		w.opts.Log.Warn("registering after the restart; retrying at the next heartbeat", "err", err)
	}
	w.opts.Log.Info("browser restarted", "reason", reason, "generation", w.snapshot().Generation)
	return nil
}

// stop drains for exit: out of the registry first, then live sessions get
// DrainTimeout, then the browser closes.
func (w *Worker) stop(httpSrv *http.Server) {
	w.mu.Lock()
	w.status = gridregistry.Draining
	w.mu.Unlock()
	if w.opts.Registry != nil {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w.opts.Registry.Unregister(uctx, w.info.ID)
		cancel()
	}
	sctx, cancel := context.WithTimeout(context.Background(), w.opts.DrainTimeout)
	httpSrv.Shutdown(sctx)
	cancel()
	w.waitIdle(w.opts.DrainTimeout)
	w.mu.Lock()
	srv := w.srv
	w.mu.Unlock()
	srv.stop(5 * time.Second)
}
