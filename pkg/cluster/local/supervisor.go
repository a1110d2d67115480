package local

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/stack"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

// The supervisor's waits.
const (
	// drainTimeout is how long a stopping child may drain (a worker's own
	// drain is 30 s) before it is killed.
	drainTimeout = 40 * time.Second
	// defaultReadyTimeout bounds the wait for every child to answer
	// /readyz, at start and after a reload, unless up gives its own
	// --timeout (RunSupervisor's readyTimeout).
	defaultReadyTimeout = 60 * time.Second
	// readyPollInterval is how often the children's /readyz is asked.
	readyPollInterval = 50 * time.Millisecond
	// replicaMetricsInterval is how often the replica gauges are updated.
	replicaMetricsInterval = time.Second
)

// Supervisor runs a local stack until its context ends. Its concerns have
// a file each: services.go starts the embedded services, children.go the
// child processes and their restarts, autoscale.go scales workers, and
// reload.go applies new settings.
type Supervisor struct {
	dir  string
	spec Spec
	plan *budget.Plan
	exe  string
	log  *slog.Logger
	reg  *prometheus.Registry
	// readyTimeout is how long children get to answer /readyz.
	readyTimeout time.Duration

	kafka   []string
	redis   string
	target  openlibrary.Target
	api     *api.Server
	runs    *runstate.Store
	adm     *kadm.Client
	proxies []string
	// egressRate is the pacing rate each worker gets for the simulator
	// (0 for a real target: the workers' own default).
	egressRate float64

	mu       sync.Mutex
	children map[string][]*child // by component, in index order
	lastUp   time.Time
	// scaleWindow and scaleBase are the start of the HPA scale-up period
	// and the worker count then (see hpaScaleUpLimit).
	scaleWindow time.Time
	scaleBase   int

	m supervisorMetrics
}

type supervisorMetrics struct {
	replicas *prometheus.GaugeVec
	desired  *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	lag      prometheus.Gauge
}

func newSupervisorMetrics(reg prometheus.Registerer) supervisorMetrics {
	m := supervisorMetrics{
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_supervisor_replicas_available",
			Help: "Ready replicas per component (kube-state-metrics' available replicas)."}, []string{"component"}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_supervisor_replicas_desired",
			Help: "Desired replicas per component."}, []string{"component"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_supervisor_restarts_total",
			Help: "Child processes restarted after they died, per component."}, []string{"component"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_supervisor_frontier_lag_records",
			Help: "Total frontier lag the autoscaler last saw."}),
	}
	reg.MustRegister(m.replicas, m.desired, m.restarts, m.lag)
	return m
}

// RunSupervisor reads spec.json in dir and runs the stack until ctx ends,
// then stops every child (draining them) and removes state.json. Children
// get readyTimeout (0: defaultReadyTimeout) to answer /readyz, at start
// and after a reload.
func RunSupervisor(ctx context.Context, dir string, readyTimeout time.Duration, log *slog.Logger) error {
	if readyTimeout <= 0 {
		readyTimeout = defaultReadyTimeout
	}
	lock, err := holdSupervisorLock(dir)
	if err != nil {
		return err // another supervisor runs this stack: touch nothing of it
	}
	defer lock.Close()
	spec, err := readSpec(dir)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	s := &Supervisor{dir: dir, spec: spec, plan: spec.Plan, exe: exe, log: log, reg: prometheus.NewRegistry(), children: map[string][]*child{},
		readyTimeout: readyTimeout}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.m = newSupervisorMetrics(s.reg)
	if err := os.MkdirAll(filepath.Join(dir, logDir), 0o755); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(dir, stateFile))
	return s.run(ctx)
}

// readSpec reads the spec up wrote, with the plan up computed.
func readSpec(dir string) (Spec, error) {
	var spec Spec
	path := filepath.Join(dir, specFile)
	if err := readJSON(path, &spec); err != nil {
		return Spec{}, fmt.Errorf("reading the stack spec: %w", err)
	}
	if spec.Plan == nil {
		return Spec{}, fmt.Errorf("%s has no plan (written by an older crawlctl): run `crawlctl up` again", path)
	}
	return spec, nil
}

func (s *Supervisor) run(ctx context.Context) error {
	st := State{Spec: s.spec, PID: os.Getpid(), StartedAt: time.Now().UTC()}
	sv, err := s.startServices(ctx, &st)
	defer sv.close()
	if err != nil {
		return err
	}
	defer s.stopAll()
	if err := s.startChildren(ctx, &st); err != nil {
		return err
	}
	if err := sv.startMetrics(s, &st); err != nil {
		return err
	}
	if err := s.waitReady(ctx, s.readyTimeout); err != nil {
		return err
	}
	stopScrape := sv.scrape(ctx, s, &st)
	defer stopScrape()
	sv.health.SetReady(true)
	if err := writeJSON(filepath.Join(s.dir, stateFile), st); err != nil {
		return err
	}
	s.recordSettings()
	s.log.Info("stack ready", "api", st.Endpoints.API, "proxies", s.plan.Proxies, "max_workers", s.maxWorkers())

	t := time.NewTicker(s.spec.PollInterval)
	defer t.Stop()
	replicas := time.NewTicker(replicaMetricsInterval)
	defer replicas.Stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			s.log.Info("stopping the stack")
			return nil
		case <-t.C:
			s.autoscale(ctx)
		case <-replicas.C:
			s.updateReplicaMetrics()
		case <-hup:
			if err := s.reload(ctx); err != nil {
				s.log.Error("applying the new settings", "err", err)
				continue
			}
			st.Spec, st.Endpoints.Grid = s.spec, s.gridEndpoint()
			if err := writeJSON(filepath.Join(s.dir, stateFile), st); err != nil {
				s.log.Error("writing the state", "err", err)
			}
		}
	}
}

// recordSettings appends the settings now in force to the stack's
// timeline, which collect reads to name and describe a run.
func (s *Supervisor) recordSettings() {
	spec := s.spec
	spec.Plan = nil // the entry has it
	if err := timeline.Append(s.dir, timeline.New(stack.Local, s.plan, s.spec.ProxyAssignment, spec)); err != nil {
		s.log.Error("recording the settings", "err", err)
	}
}
