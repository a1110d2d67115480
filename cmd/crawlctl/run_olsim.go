package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

func newRunSimulatorCommand(a *app) *cobra.Command {
	var (
		listen string
		rules  []string
		opts   = olsim.DefaultOptions()
	)
	cmd := runtimeCommand(a, "olsim", "Open Library simulator: a synthetic catalogue behind per-IP rate limits",
		func(ctx context.Context, log *slog.Logger) error {
			if len(rules) > 0 {
				opts.Rules = nil
				for _, r := range rules {
					rule, err := olsim.ParseRule(r)
					if err != nil {
						return usageError{err}
					}
					opts.Rules = append(opts.Rules, rule)
				}
			}
			reg := newRegistry()
			sim, err := olsim.New(opts, reg)
			if err != nil {
				return usageError{err}
			}
			ln, err := serve.Listen(listen)
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			health := &serve.Health{}
			health.SetReady(true)
			health.Register(mux)
			serve.Metrics(mux, "/metrics", reg)
			mux.Handle("/", sim)
			log.Info("simulator started", "addr", ln.Addr().String(), "time_factor", opts.TimeFactor, "limits", !opts.NoLimits)
			return serve.Serve(ctx, ln, mux, log)
		})
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8081", "listen address")
	f.Uint64Var(&opts.Catalogue.Seed, "seed", opts.Catalogue.Seed, "catalogue seed: the same seed serves the same catalogue")
	f.IntVar(&opts.Catalogue.MaxWorksPerAuthor, "works-per-author", opts.Catalogue.MaxWorksPerAuthor, "most works an author has (10-64)")
	f.IntVar(&opts.Catalogue.Subjects, "subjects", opts.Catalogue.Subjects, "size of the subject pool")
	f.Float64Var(&opts.TimeFactor, "time-factor", 1, "multiply every rate limit (10: a run ten times faster)")
	f.BoolVar(&opts.NoLimits, "no-limits", false, "serve without rate limits")
	f.StringArrayVar(&rules, "rule", nil, "rate rule NAME:PREFIX:RATE[:BURST] per client IP (repeat; replaces the default json 3/s burst 5, html 1/s)")
	f.DurationVar(&opts.Latency, "latency", 0, "added to every response")
	f.DurationVar(&opts.Jitter, "jitter", 0, "up to this much more latency, uniformly")
	f.Float64Var(&opts.ErrorRatio, "error-ratio", 0, "ratio of requests answered 500")
	f.Float64Var(&opts.SlowRatio, "slow-ratio", 0, "ratio of requests delayed by --slow-delay")
	f.DurationVar(&opts.SlowDelay, "slow-delay", opts.SlowDelay, "delay of slow responses")
	f.Float64Var(&opts.TruncateRatio, "truncate-ratio", 0, "ratio of bodies cut in half")
	f.DurationVar(&opts.CrawlDelay, "crawl-delay", 0, "Crawl-delay announced in robots.txt")
	f.StringArrayVar(&opts.Disallow, "disallow", nil, "path prefix robots.txt disallows (repeat)")
	return cmd
}
