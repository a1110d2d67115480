package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/hotrestart"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// ServeOptions configure how the proxy listens, restarts and drains.
type ServeOptions struct {
	Listen, AdminListen string
	// MaxHeaderBytes bounds request headers; larger ones get 431.
	MaxHeaderBytes int
	// DrainTimeout bounds a drain (SIGTERM, or the old process after a
	// SIGHUP hand-off): in-flight requests and tunnels get this long.
	DrainTimeout time.Duration
	// UpgradeTimeout bounds how long the new process may take to be ready.
	UpgradeTimeout time.Duration
	// PIDFile, when set, gets the serving process's pid (it changes on
	// SIGHUP).
	PIDFile string
	// Pprof serves /debug/pprof/ on the admin port.
	Pprof bool
}

// Serve runs the proxy until ctx ends (drain and return) or a SIGHUP hands
// its listeners to a new process (drain and return). A failed hand-off
// keeps this process serving.
func Serve(ctx context.Context, p *Proxy, so ServeOptions, reg prometheus.Gatherer, log *slog.Logger) error {
	if so.MaxHeaderBytes <= 0 {
		so.MaxHeaderBytes = 32 << 10
	}
	adminMux := http.NewServeMux()
	serve.Metrics(adminMux, "/metrics", reg)
	if so.Pprof {
		adminMux.HandleFunc("/debug/pprof/", pprof.Index)
		adminMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	log.Info("egress", "addr", p.opts.EgressIP)
	srv := &hotrestart.Server{
		Name:   "proxy",
		Listen: so.Listen, AdminListen: so.AdminListen,
		Main:           newConnServer(p, so.MaxHeaderBytes),
		Admin:          adminMux,
		Sessions:       &p.tunnels,
		DrainTimeout:   so.DrainTimeout,
		UpgradeTimeout: so.UpgradeTimeout,
		PIDFile:        so.PIDFile,
		Log:            log,
		OnDrained:      p.up.closeIdle,
	}
	return srv.Run(ctx)
}

// ServeListener serves p's client connections on ln until ln is closed,
// without hot restarts (for embedding p, and tests; `crawlctl run proxy`
// uses Serve).
func (p *Proxy) ServeListener(ln net.Listener) error { return newConnServer(p, 0).Serve(ln) }
