package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/browser"
	"github.com/crawlctl/crawlctl/pkg/runtime/grid"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// openGridRegistry is the shared Redis registry, or nil without an
// address.
func openGridRegistry(ctx context.Context, addr string) (gridregistry.Registry, error) {
	if addr == "" {
		return nil, nil
	}
	rdb, err := runstate.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return gridregistry.NewRedis(rdb, gridregistry.DefaultPolicy), nil
}

func newRunGridCommand(a *app) *cobra.Command {
	var (
		redisAddr string
		opts      = grid.DefaultOptions()
		so        grid.ServeOptions
	)
	cmd := runtimeCommand(a, "grid", "Browser grid proxy: Playwright clients connect over WebSocket, sessions go to browser workers",
		func(ctx context.Context, log *slog.Logger) error {
			if opts.Token == "" && !serve.LoopbackOnly(so.Listen) {
				return usageErrorf("--listen %s is reachable from other hosts: set --token (or CRAWLCTL_TOKEN), "+
					"or listen on loopback (--listen 127.0.0.1:8080)", so.Listen)
			}
			reg, err := openGridRegistry(ctx, redisAddr)
			if err != nil {
				return err
			}
			if reg == nil {
				if len(opts.Workers) == 0 {
					return usageErrorf("no browser workers: give --redis (workers register there) or list them with --worker http://host:port")
				}
				reg = gridregistry.NewMemory(gridregistry.DefaultPolicy)
			}
			defer reg.Close()
			prom := newRegistry()
			opts.Registry, opts.Log, opts.Registerer = reg, log, prom
			g, err := grid.New(opts)
			if err != nil {
				return err
			}
			return g.Serve(ctx, so, prom)
		})
	f := cmd.Flags()
	f.StringVar(&so.Listen, "listen", "127.0.0.1:8080", "listen address (clients: chromium.connect(\"ws://host:port\")); a non-loopback address needs --token")
	f.StringVar(&redisAddr, "redis", "", "Redis of the grid registry, shared by grid proxies and workers (empty: in memory, with --worker)")
	f.StringArrayVar(&opts.Workers, "worker", nil, "control URL of a browser worker to register (repeat; without --redis)")
	f.StringVar(&opts.Token, "token", "", "token clients must present (?token= or Authorization: Bearer) on every endpoint but /healthz and /readyz; required off loopback")
	f.BoolVar(&opts.MetricsPublic, "metrics-public", false, "serve /metrics and /metrics/prometheus without the token (for a Prometheus that scrapes without one)")
	f.StringArrayVar(&opts.AllowedOrigins, "allowed-origin", nil, "accepted Origin header (repeat; default: any)")
	f.DurationVar(&opts.SelectTimeout, "worker-select-timeout", opts.SelectTimeout, "how long a client waits for a free worker before 503")
	f.IntVar(&opts.QueueSize, "queue-size", opts.QueueSize, "clients that may wait at once; one more gets 429")
	f.DurationVar(&opts.HealthInterval, "health-interval", opts.HealthInterval, "how often each worker is checked")
	f.Int64Var(&opts.Relay.MaxMessageBytes, "max-message-bytes", opts.Relay.MaxMessageBytes, "largest WebSocket message either side may send")
	f.DurationVar(&opts.Relay.PingInterval, "ping-interval", opts.Relay.PingInterval, "keepalive ping interval")
	f.DurationVar(&so.DrainTimeout, "drain-timeout", 60*time.Second, "how long live sessions may finish on SIGTERM or after a SIGHUP hand-off")
	f.StringVar(&so.PIDFile, "pid-file", "", "write the serving process's pid here (it changes on SIGHUP)")
	return cmd
}

func newRunBrowserCommand(a *app) *cobra.Command {
	var (
		listen, advertise, redisAddr, chromium, playwrightDir string
		opts                                                  = browser.DefaultOptions()
	)
	cmd := runtimeCommand(a, "browser", "Browser worker: a supervised Playwright browser server behind a session relay",
		func(ctx context.Context, log *slog.Logger) error {
			// The seed's variables, as its compose file sets them.
			for name, dst := range map[string]*int{"MAX_CONCURRENT_SESSIONS": &opts.MaxConcurrent, "MAX_LIFETIME_SESSIONS": &opts.MaxLifetime} {
				if v, ok := os.LookupEnv(name); ok {
					n, err := strconv.Atoi(v)
					if err != nil {
						return usageErrorf("%s=%q is not a number", name, v)
					}
					*dst = n
				}
			}
			if advertise == "" {
				host, port, err := net.SplitHostPort(listen)
				if err != nil {
					return usageErrorf("--listen %q: %v", listen, err)
				}
				if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
					if host = os.Getenv("POD_IP"); host == "" {
						host, _ = os.Hostname()
					}
				}
				advertise = net.JoinHostPort(host, port)
			}
			if opts.Token == "" && !serve.LoopbackOnly(listen) {
				return usageErrorf("--listen %s is reachable from other hosts: set --token (the grid's), or listen on loopback", listen)
			}
			rt, err := playwright.PrepareRuntime(ctx, opts.Browser, chromium, playwrightDir, log)
			if err != nil {
				return err
			}
			if opts.Browser == "chromium" {
				opts.Args = playwright.ChromiumArgs
			}
			reg, err := openGridRegistry(ctx, redisAddr)
			if err != nil {
				return err
			}
			if reg != nil {
				defer reg.Close()
			}
			ln, err := serve.Listen(listen)
			if err != nil {
				return err
			}
			prom := newRegistry()
			opts.Runtime, opts.Advertise, opts.Registry, opts.Log, opts.Registerer = rt, advertise, reg, log, prom
			w, err := browser.New(opts)
			if err != nil {
				return usageError{err}
			}
			return w.Run(ctx, ln, prom)
		})
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:3000", "listen address of sessions, /status, /healthz and /metrics")
	f.StringVar(&advertise, "advertise", "", "host:port the grid reaches this worker at (default: the listen address; $POD_IP or the hostname if it is a wildcard)")
	f.StringVar(&opts.ID, "id", "", "worker id in the registry (default: from --advertise)")
	f.StringVar(&opts.Browser, "browser", opts.Browser, "browser type: chromium (the system Chromium), firefox or webkit (Playwright's own builds)")
	f.StringVar(&chromium, "chromium", "", "Chromium binary (default: chromium on PATH)")
	f.StringVar(&playwrightDir, "playwright-dir", "", "where playwright-core@"+playwright.Version+" is or gets installed (default: the user cache dir)")
	f.StringVar(&redisAddr, "redis", "", "Redis of the grid registry (empty: a grid lists this worker with --worker)")
	f.StringVar(&opts.Token, "token", "", "token required of sessions and commands (the grid's)")
	f.IntVar(&opts.MaxConcurrent, "max-concurrent-sessions", opts.MaxConcurrent, "sessions at once (env MAX_CONCURRENT_SESSIONS too)")
	f.IntVar(&opts.MaxLifetime, "max-lifetime-sessions", opts.MaxLifetime, "sessions before the browser restarts (env MAX_LIFETIME_SESSIONS too)")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", opts.DrainTimeout, "how long live sessions may finish before a restart or exit closes them")
	f.Int64Var(&opts.Relay.MaxMessageBytes, "max-message-bytes", opts.Relay.MaxMessageBytes, "largest WebSocket message either side may send")
	return cmd
}
