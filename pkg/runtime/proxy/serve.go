package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"
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
	if so.DrainTimeout <= 0 {
		so.DrainTimeout = 30 * time.Second
	}
	if so.UpgradeTimeout <= 0 {
		so.UpgradeTimeout = 30 * time.Second
	}
	ls, err := hotrestart.New()
	if err != nil {
		return err
	}
	ln, err := ls.Listen("proxy", so.Listen)
	if err != nil {
		return err
	}
	adminLn, err := ls.Listen("admin", so.AdminListen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    so.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	drainer := hotrestart.Track(srv)
	health := &serve.Health{}
	adminMux := http.NewServeMux()
	health.Register(adminMux)
	serve.Metrics(adminMux, "/metrics", reg)
	if so.Pprof {
		adminMux.HandleFunc("/debug/pprof/", pprof.Index)
		adminMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	admin := &http.Server{Handler: adminMux, ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- admin.Serve(adminLn) }()
	if err := hotrestart.Ready(); err != nil {
		log.Warn("telling the previous process we are ready", "err", err)
	}
	health.SetReady(true)
	writePID(so.PIDFile, log)
	log.Info("proxy serving", "addr", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"egress", p.opts.EgressIP, "inherited", ls.Inherited())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("draining", "deadline", so.DrainTimeout)
			break wait
		case <-hup:
			proc, err := ls.Upgrade(so.UpgradeTimeout)
			if err != nil {
				log.Error("restart failed; this process keeps serving", "err", err)
				continue
			}
			log.Info("handed the listeners to the new process; draining", "new_pid", proc.Pid)
			break wait
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("proxy server: %w", err)
			}
		}
	}
	// Drain: stop accepting (our descriptors only: a successor keeps the
	// sockets), let every request finish with Connection: close, then the
	// tunnels.
	health.SetReady(false)
	ls.Close()
	dctx, cancel := context.WithTimeout(context.Background(), so.DrainTimeout)
	defer cancel()
	err = drainer.Drain(dctx, srv)
	if werr := p.WaitTunnels(dctx); werr != nil {
		p.CloseTunnels()
	}
	admin.Close()
	p.up.closeIdle()
	if err != nil {
		log.Warn("drain deadline passed with requests in flight", "err", err)
	}
	return nil
}

func writePID(path string, log *slog.Logger) {
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("writing pid file", "path", path, "err", err)
	}
}
