package grid

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/hotrestart"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// WorkerView is a worker as GET /api/v1/workers lists it.
type WorkerView struct {
	gridregistry.Worker
	// Breaker is this grid proxy's circuit breaker for the worker.
	Breaker string `json:"breaker"`
}

// Handler serves sessions on any path, plus GET /metrics
// ({"activeConnections": N}, as the seed documents), /metrics/prometheus,
// /api/v1/workers, /healthz and /readyz (h). With a token, all but the
// probes need it (sessions check it themselves); Options.MetricsPublic
// leaves the two metrics endpoints open.
func (g *Grid) Handler(h *serve.Health, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	h.Register(mux)
	metrics := g.guard(!g.opts.MetricsPublic)
	mux.Handle("GET /metrics/prometheus", metrics(serve.MetricsHandler(reg)))
	mux.Handle("GET /metrics", metrics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := g.opts.Registry.Workers(r.Context())
		if err != nil {
			errBody(w, http.StatusServiceUnavailable, "registry unavailable: "+err.Error())
			return
		}
		n := 0
		for _, wk := range ws {
			n += wk.Active
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"activeConnections\": %d}\n", n) // byte for byte as the seed shows it
	})))
	mux.Handle("GET /api/v1/workers", g.guard(true)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := g.opts.Registry.Workers(r.Context())
		if err != nil {
			errBody(w, http.StatusServiceUnavailable, "registry unavailable: "+err.Error())
			return
		}
		out := make([]WorkerView, len(ws))
		for i, wk := range ws {
			out[i] = WorkerView{Worker: wk, Breaker: g.health.breakerState(wk.ID)}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"workers": out})
	})))
	mux.HandleFunc("/", g.ServeSession)
	return mux
}

// guard wraps a handler so that, when required, a request without the
// token is answered 401.
func (g *Grid) guard(required bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !required {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !serve.Authorized(r, g.opts.Token) {
				errBody(w, http.StatusUnauthorized, unauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ServeOptions configure how the grid listens, restarts and drains.
type ServeOptions struct {
	Listen string
	// DrainTimeout bounds a drain (SIGTERM, or the old process after a
	// SIGHUP hand-off): live sessions get this long.
	DrainTimeout time.Duration
	PIDFile      string
}

// Serve runs the grid until ctx ends or a SIGHUP hands its listener to a
// new process; either way live sessions finish (up to the drain deadline)
// before it returns.
func (g *Grid) Serve(ctx context.Context, so ServeOptions, reg prometheus.Gatherer) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { g.Run(bg); close(done) }()
	defer func() { stop(); <-done }()
	health := &serve.Health{}
	srv := &hotrestart.Server{
		Name:   "grid",
		Listen: so.Listen,
		HTTP: &http.Server{
			Handler:           g.Handler(health, reg),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		Health:       health,
		Sessions:     &g.Sessions,
		DrainTimeout: so.DrainTimeout,
		PIDFile:      so.PIDFile,
		Log:          g.opts.Log,
	}
	return srv.Run(ctx)
}
