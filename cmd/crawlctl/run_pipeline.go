package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/graphstore"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/runtime/graphwriter"
	"github.com/crawlctl/crawlctl/pkg/runtime/worker"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

func clientID(component string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("crawlctl-%s-%s-%d", component, host, os.Getpid())
}

func newRunWorkerCommand(a *app) *cobra.Command {
	var (
		conn                     stackFlags
		target, admin, userAgent string
		gogc                     int
		opts                     = worker.DefaultOptions()
		pool                     []string
		pacing                   = egress.DefaultOptions()
		sharedPacing             bool
	)
	cmd := runtimeCommand(a, "worker", "Crawl worker: consumes the frontier, fetches from the target, produces results and edges",
		func(ctx context.Context, log *slog.Logger) error {
			tgt, err := parseTarget(target)
			if err != nil {
				return err
			}
			useFallbackRoots()
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(gogc)
			}
			runs, err := runstate.Open(ctx, conn.redis)
			if err != nil {
				return err
			}
			defer runs.Close()
			reg, health := newRegistry(), &serve.Health{}
			opts.Brokers, opts.Target, opts.Store, opts.UserAgent = brokers(conn.kafka), tgt, runs, userAgent
			opts.ClientID, opts.Log, opts.Registerer = clientID("worker"), log, reg
			if len(pool) == 0 {
				pool = brokers(os.Getenv("PROXY_POOL")) // the reference crawler's variable
			}
			if len(pool) > 0 {
				if pacing.Scope == "" {
					pacing.Scope = egress.ScopeEgress
					if tgt.IsReal() {
						pacing.Scope = egress.ScopeClient // Open Library's quota is per client
					}
				}
				pacing.Proxies, pacing.Log, pacing.Registerer = pool, log, reg
				if sharedPacing {
					pacing.Redis = runs.Client()
				}
				p, err := egress.New(pacing)
				if err != nil {
					return usageError{err}
				}
				defer p.Close()
				opts.Fetcher = p
				log.Info("fetching through the egress pool", "proxies", len(pool), "assignment", pacing.Assignment, "scope", pacing.Scope, "rate", pacing.Rate)
			}
			w, err := worker.New(opts)
			if err != nil {
				return err
			}
			health.SetReady(true)
			log.Info("worker started", "target", tgt.String(), "concurrent_jobs", opts.ConcurrentJobs)
			return runWithAdmin(ctx, admin, health, reg, log, w.Run)
		})
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&target, "target", defaultTarget, "crawl target base URL; URLs elsewhere are never fetched")
	f.StringVar(&admin, "admin-listen", "127.0.0.1:9101", "address of /healthz, /readyz and /metrics")
	f.IntVar(&opts.ConcurrentJobs, "concurrent-jobs", opts.ConcurrentJobs, "jobs in flight")
	f.IntVar(&opts.MaxAttempts, "max-attempts", opts.MaxAttempts, "fetch attempts before the DLQ (429, 5xx, timeouts)")
	f.DurationVar(&opts.BackoffBase, "backoff-base", opts.BackoffBase, "first retry delay (doubles per attempt, with jitter)")
	f.DurationVar(&opts.BackoffMax, "backoff-max", opts.BackoffMax, "longest retry delay (a Retry-After may ask for more)")
	f.DurationVar(&opts.FetchTimeout, "fetch-timeout", opts.FetchTimeout, "timeout of one fetch, body included, from when an egress takes it")
	f.DurationVar(&opts.MaxPacingWait, "max-pacing-wait", opts.MaxPacingWait, "longest wait for an egress pacing slot; a job whose slot is later is handed back, no attempt spent")
	f.Int64Var(&opts.MaxBodyBytes, "max-body-bytes", opts.MaxBodyBytes, "largest response body read")
	f.StringVar(&userAgent, "user-agent", opts.UserAgent, "User-Agent: name the crawler and a contact")
	f.BoolVar(&opts.Robots, "robots", false, "obey the target's robots.txt, including Crawl-delay")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", opts.DrainTimeout, "on SIGTERM, how long jobs in flight may finish")
	f.IntVar(&gogc, "gogc", 50, "Go GC percent (GOGC wins when set): 50 keeps a worker near its 32Mi request for ~5% CPU")
	f.StringSliceVar(&pool, "proxy-pool", nil, "egress proxy URLs, comma-separated (also PROXY_POOL); none: fetch directly")
	f.StringVar((*string)(&pacing.Assignment), "proxy-assignment", string(pacing.Assignment), "pace: per request, soonest pacing slot then fewest in flight; hash: the reference's hash(hostname) % pool")
	f.StringVar((*string)(&pacing.Scope), "politeness-scope", "", "egress: a rate per egress IP (simulator, own sites); client: one rate for all egress (default for openlibrary.org, whose quota is per client)")
	f.Float64Var(&pacing.Rate, "egress-rate", pacing.Rate, "requests/s per pacing queue (Open Library: 3 with an identifying User-Agent)")
	f.IntVar(&pacing.Burst, "egress-burst", pacing.Burst, "pacing burst (per-process pacing only)")
	f.BoolVar(&sharedPacing, "shared-pacing", true, "keep pacing state in Redis, shared by every worker (off: each worker paces alone)")
	return cmd
}

func newRunGraphWriterCommand(a *app) *cobra.Command {
	var (
		conn         stackFlags
		store, admin string
		opts         = graphwriter.DefaultOptions()
	)
	cmd := runtimeCommand(a, "graph-writer", "Graph writer: stores results and edges in the graph store",
		func(ctx context.Context, log *slog.Logger) error {
			gs, err := graphstore.Open(ctx, store)
			if err != nil {
				return err
			}
			defer gs.Close()
			runs, err := runstate.Open(ctx, conn.redis)
			if err != nil {
				return err
			}
			defer runs.Close()
			reg, health := newRegistry(), &serve.Health{}
			opts.Brokers, opts.Store, opts.Runs, opts.Health = brokers(conn.kafka), gs, runs, health
			opts.ClientID, opts.Log, opts.Registerer = clientID("graph-writer"), log, reg
			w, err := graphwriter.New(opts)
			if err != nil {
				return err
			}
			return runWithAdmin(ctx, admin, health, reg, log, w.Run)
		})
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&store, "graph-store", "sqlite:crawl-graph.db", "graph store: sqlite:PATH or postgres://USER@HOST/DB")
	f.StringVar(&admin, "admin-listen", "127.0.0.1:9102", "address of /healthz, /readyz and /metrics")
	f.IntVar(&opts.BatchSize, "batch-size", opts.BatchSize, "records per batch")
	f.DurationVar(&opts.BatchWait, "batch-wait", opts.BatchWait, "longest wait to fill a batch")
	return cmd
}

func newRunAPICommand(a *app) *cobra.Command {
	var (
		conn           stackFlags
		target, listen string
		partitions     int
		token          string
		metricsPublic  bool
	)
	cmd := runtimeCommand(a, "api", "Control API: creates runs from seeds, reports progress and consumer lag",
		func(ctx context.Context, log *slog.Logger) error {
			if token == "" && !serve.LoopbackOnly(listen) {
				return usageErrorf("--listen %s is reachable from other hosts: set --token (or CRAWLCTL_TOKEN), "+
					"or listen on loopback (--listen 127.0.0.1:8090)", listen)
			}
			tgt, err := parseTarget(target)
			if err != nil {
				return err
			}
			runs, err := runstate.Open(ctx, conn.redis)
			if err != nil {
				return err
			}
			defer runs.Close()
			srv, err := api.New(api.Options{Brokers: brokers(conn.kafka), Target: tgt, Runs: runs, Partitions: partitions,
				Log: log, Registry: newRegistry(), Token: token, MetricsPublic: metricsPublic})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := serve.Listen(listen)
			if err != nil {
				return err
			}
			go func() {
				if err := srv.Start(ctx); err != nil {
					log.Error("api not ready", "err", err)
				}
			}()
			return serve.Serve(ctx, ln, srv.Handler(), log)
		})
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&target, "target", defaultTarget, "crawl target base URL; seeds elsewhere are refused")
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "listen address; a non-loopback address needs --token")
	f.StringVar(&token, "token", "", "token clients must present (Authorization: Bearer or ?token=) on every endpoint but /healthz and /readyz; required off loopback")
	f.BoolVar(&metricsPublic, "metrics-public", false, "serve /metrics without the token (for a Prometheus that scrapes without one)")
	f.IntVar(&partitions, "partitions", topics.DefaultFrontierPartitions, "frontier partitions (topics are created at start)")
	return cmd
}
