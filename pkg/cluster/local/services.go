package local

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/metricstore"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// services are what the supervisor hosts itself: the Kafka-protocol
// broker, the Redis-protocol server, the simulator, the control API, the
// metrics store and its own endpoints. close stops them in reverse order.
type services struct {
	servers sync.WaitGroup
	sctx    context.Context
	closers []func()
	health  *serve.Health
	store   *metricstore.Store
}

func (sv *services) onClose(f func()) { sv.closers = append(sv.closers, f) }

func (sv *services) close() {
	for i := len(sv.closers) - 1; i >= 0; i-- {
		sv.closers[i]()
	}
}

// serveOn serves h on a free loopback port until close.
func (sv *services) serveOn(s *Supervisor, name string, h http.Handler) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	ln, err := serve.Listen(addr)
	if err != nil {
		return "", err
	}
	sv.servers.Go(func() {
		if err := serve.Serve(sv.sctx, ln, h, s.log.With("server", name)); err != nil {
			s.log.Error("server stopped", "server", name, "err", err)
		}
	})
	return "http://" + addr, nil
}

// startServices starts the broker, Redis, the simulator (unless a real
// target was asked for) and the control API, which creates the topics,
// and records their endpoints in st.
func (s *Supervisor) startServices(ctx context.Context, st *State) (*services, error) {
	sv := &services{health: &serve.Health{}}
	sctx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	sv.sctx = sctx
	sv.onClose(func() { stopServers(); sv.servers.Wait() })

	kport, err := freePort()
	if err != nil {
		return sv, err
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport))
	if err != nil {
		return sv, fmt.Errorf("starting the Kafka-protocol broker: %w", err)
	}
	sv.onClose(kc.Close)
	s.kafka = kc.ListenAddrs()
	mr := miniredis.NewMiniRedis()
	raddr, err := freeAddr()
	if err != nil {
		return sv, err
	}
	if err := mr.StartAddr(raddr); err != nil {
		return sv, fmt.Errorf("starting the Redis-protocol server: %w", err)
	}
	sv.onClose(mr.Close)
	s.redis = mr.Addr()
	st.Endpoints = stack.Endpoints{Kafka: strings.Join(s.kafka, ","), Redis: s.redis}

	target := s.spec.Target
	if target == "" {
		opts := olsim.DefaultOptions()
		opts.TimeFactor = s.spec.SimTimeFactor
		s.egressRate = opts.RuleRate(olsim.JSONRule)
		sim, err := olsim.New(opts, s.reg)
		if err != nil {
			return sv, err
		}
		if target, err = sv.serveOn(s, "olsim", sim); err != nil {
			return sv, err
		}
		st.Endpoints.Simulator = target
	}
	if s.target, err = openlibrary.NewTarget(target); err != nil {
		return sv, err
	}

	if s.runs, err = runstate.Open(ctx, s.redis); err != nil {
		return sv, err
	}
	sv.onClose(func() { s.runs.Close() })
	if s.api, err = api.New(api.Options{Brokers: s.kafka, Target: s.target, Runs: s.runs, Partitions: s.plan.Partitions,
		Log: s.log.With("component", "api"), Registry: prometheus.NewRegistry(), Created: s.recordRun}); err != nil {
		return sv, err
	}
	sv.onClose(func() { s.api.Close() })
	if st.Endpoints.API, err = sv.serveOn(s, "api", s.api.Handler()); err != nil {
		return sv, err
	}
	if err := s.api.Start(ctx); err != nil {
		return sv, err
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		return sv, err
	}
	sv.onClose(kcl.Close)
	s.adm = kadm.NewClient(kcl)
	return sv, nil
}

// startMetrics opens the metrics store, which answers PromQL, and serves
// the supervisor's own /healthz, /readyz, /metrics and /status.
func (sv *services) startMetrics(s *Supervisor, st *State) error {
	store, err := metricstore.Open(filepath.Join(s.dir, tsdbDir), s.log.With("component", "metricstore"))
	if err != nil {
		return err
	}
	sv.store = store
	sv.onClose(func() { store.Close() })
	promMux := http.NewServeMux()
	store.Register(promMux)
	if st.Endpoints.Prometheus, err = sv.serveOn(s, "prometheus", promMux); err != nil {
		return err
	}
	mux := http.NewServeMux()
	sv.health.Register(mux)
	serve.Metrics(mux, "/metrics", s.reg)
	mux.HandleFunc("GET /status", s.serveStatus)
	st.Admin, err = sv.serveOn(s, "supervisor", mux)
	return err
}

// scrape starts the metrics store's scrapes of every component; the
// returned func stops them.
func (sv *services) scrape(ctx context.Context, s *Supervisor, st *State) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	api, admin, interval := st.Endpoints.API, st.Admin, s.spec.ScrapeInterval // fixed while up
	var wg sync.WaitGroup
	wg.Go(func() {
		sv.store.Run(ctx, interval, func() []metricstore.Target { return s.targets(api, admin) })
	})
	return func() { cancel(); wg.Wait() }
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), err
}

// recordRun writes a run created to the state dir, so that collect finds
// it after the stack (and its in-memory run store) is gone.
func (s *Supervisor) recordRun(run *runstate.Run) {
	if err := runstate.SaveRun(filepath.Join(s.dir, runsDir), run); err != nil {
		s.log.Error("recording the run", "run", run.ID, "err", err)
	}
}
