package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crawlctl/crawlctl/internal/exepages"
	"github.com/crawlctl/crawlctl/pkg/config"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// Default addresses of the runtimes when run by hand; the providers set
// their own.
const (
	defaultKafka  = "127.0.0.1:9092"
	defaultRedis  = "127.0.0.1:6379"
	defaultTarget = "http://127.0.0.1:8081" // the simulator's default listen address
)

func newRunCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run <component>",
		Short: "Run one component of the crawl stack in the foreground",
		Long: `run is every runtime of the crawl stack. Each flag can also be set by the
environment variable CRAWLCTL_<FLAG> (upper case, '-' as '_'), as the charts do.
SIGTERM or Ctrl-C drains the component and stops it.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newRunWorkerCommand(a),
		newRunGraphWriterCommand(a),
		newRunAPICommand(a),
		newRunSimulatorCommand(a),
		newRunProxyCommand(a),
		newRunGridCommand(a),
		newRunBrowserCommand(a),
		newRunBrokerCommand(a),
		newRunSupervisorCommand(a),
	)
	return cmd
}

// runtimeCommand is a `crawlctl run` subcommand: flags fall back to
// CRAWLCTL_<FLAG> variables, and the logger logs at info level.
func runtimeCommand(a *app, use, short string, run func(ctx context.Context, log *slog.Logger) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return usageError{err}
			}
			level := slog.LevelInfo
			switch {
			case a.cfg.Quiet:
				level = slog.LevelError
			case a.cfg.Verbose > 0:
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewJSONHandler(a.errOut, &slog.HandlerOptions{Level: level})).With("component", use)
			if st, err := exepages.Release(); err != nil {
				log.Warn("could not give back the binary's start-up pages", "err", err)
			} else {
				log.Debug("gave back the binary's start-up pages", "mappings", st.Mappings, "bytes", st.Bytes)
			}
			return run(cmd.Context(), log)
		},
	}
}

// flagsFromEnv sets each flag not given on the command line from its
// CRAWLCTL_<FLAG> variable.
func flagsFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil || f.Annotations[config.KeyAnnotation] != nil {
			return
		}
		name := config.EnvVar(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// newRegistry is a Prometheus registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// stackFlags are the addresses every pipeline runtime connects to.
type stackFlags struct{ kafka, redis string }

func (sf *stackFlags) add(f *pflag.FlagSet) {
	f.StringVar(&sf.kafka, "kafka", defaultKafka, "Kafka bootstrap brokers, comma-separated")
	f.StringVar(&sf.redis, "redis", defaultRedis, "Redis address (host:port or redis:// URL)")
}

// runWithAdmin serves the admin endpoints while run runs.
func runWithAdmin(ctx context.Context, addr string, h *serve.Health, reg *prometheus.Registry, log *slog.Logger, run func(context.Context) error) error {
	stop, err := serveAdmin(ctx, addr, h, reg, log)
	if err != nil {
		return err
	}
	defer stop()
	return run(ctx)
}

// serveAdmin serves /healthz, /readyz and /metrics on addr until ctx ends.
func serveAdmin(ctx context.Context, addr string, h *serve.Health, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ln, err := serve.Listen(addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	h.Register(mux)
	serve.Metrics(mux, "/metrics", reg)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		if err := serve.Serve(sctx, ln, mux, log); err != nil {
			log.Error("admin server", "err", err)
		}
		close(done)
	}()
	return func() { cancel(); <-done }, nil
}

func parseTarget(raw string) (openlibrary.Target, error) {
	t, err := openlibrary.NewTarget(raw)
	if err != nil {
		return t, usageError{fmt.Errorf("--target: %w", err)}
	}
	return t, nil
}

func brokers(list string) []string {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
