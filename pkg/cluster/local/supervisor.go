package local

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/metricstore"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/timeline"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Supervisor runs a local stack until its context ends.
type Supervisor struct {
	dir  string
	spec Spec
	plan *budget.Plan
	exe  string
	log  *slog.Logger
	reg  *prometheus.Registry

	kafka   []string
	redis   string
	target  openlibrary.Target
	api     *api.Server
	runs    *runstate.Store
	adm     *kadm.Client
	proxies []string

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

// Component names of children.
const (
	compProxy       = budget.Proxy
	compWorker      = budget.Worker
	compGraphWriter = budget.GraphWriter
	compGrid        = budget.GridProxy
	compBrowser     = budget.Browser
)

// childComponents in start order (allChildren lists them so).
var childComponents = []string{compProxy, compGraphWriter, compBrowser, compGrid, compWorker}

// runCommand is the `crawlctl run` command of a component, where the two
// names differ.
var runCommand = map[string]string{compGrid: "grid"}

// servesOnListen are the components whose one --listen address also
// serves /readyz and /metrics (no --admin-listen).
var servesOnListen = map[string]bool{compGrid: true, compBrowser: true}

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

// RunSupervisor reads spec.json in dir and runs the stack until ctx ends,
// then stops every child (draining them) and removes state.json.
func RunSupervisor(ctx context.Context, dir string, log *slog.Logger) error {
	lock, err := holdSupervisorLock(dir)
	if err != nil {
		return err // another supervisor runs this stack: touch nothing of it
	}
	defer lock.Close()
	var spec Spec
	if err := readJSON(filepath.Join(dir, specFile), &spec); err != nil {
		return fmt.Errorf("reading the stack spec: %w", err)
	}
	spec.defaults()
	plan, err := budget.Compute(spec.Budget)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	s := &Supervisor{dir: dir, spec: spec, plan: plan, exe: exe, log: log, reg: prometheus.NewRegistry(), children: map[string][]*child{}}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.m = supervisorMetrics{
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_supervisor_replicas_available",
			Help: "Ready replicas per component (kube-state-metrics' available replicas)."}, []string{"component"}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crawl_supervisor_replicas_desired",
			Help: "Desired replicas per component."}, []string{"component"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_supervisor_restarts_total",
			Help: "Child processes restarted after they died, per component."}, []string{"component"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_supervisor_frontier_lag_records",
			Help: "Total frontier lag the autoscaler last saw."}),
	}
	s.reg.MustRegister(s.m.replicas, s.m.desired, s.m.restarts, s.m.lag)
	if err := os.MkdirAll(filepath.Join(dir, logDir), 0o755); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(dir, stateFile))
	return s.run(ctx)
}

func (s *Supervisor) run(ctx context.Context) error {
	st := State{Spec: s.spec, PID: os.Getpid(), StartedAt: time.Now().UTC()}
	var servers sync.WaitGroup
	sctx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopServers(); servers.Wait() }()
	serveOn := func(name string, h http.Handler) (string, error) {
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		ln, err := serve.Listen(addr)
		if err != nil {
			return "", err
		}
		servers.Go(func() {
			if err := serve.Serve(sctx, ln, h, s.log.With("server", name)); err != nil {
				s.log.Error("server stopped", "server", name, "err", err)
			}
		})
		return "http://" + addr, nil
	}

	// Kafka protocol, in memory.
	kport, err := freePort()
	if err != nil {
		return err
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport))
	if err != nil {
		return fmt.Errorf("starting the Kafka-protocol broker: %w", err)
	}
	defer kc.Close()
	s.kafka = kc.ListenAddrs()
	// Redis protocol.
	mr := miniredis.NewMiniRedis()
	raddr, err := freeAddr()
	if err != nil {
		return err
	}
	if err := mr.StartAddr(raddr); err != nil {
		return fmt.Errorf("starting the Redis-protocol server: %w", err)
	}
	defer mr.Close()
	s.redis = mr.Addr()
	st.Endpoints = cluster.Endpoints{Kafka: strings.Join(s.kafka, ","), Redis: s.redis}

	// The simulator, unless a real target was asked for.
	target := s.spec.Target
	if target == "" {
		opts := olsim.DefaultOptions()
		opts.TimeFactor = s.spec.SimTimeFactor
		sim, err := olsim.New(opts, s.reg)
		if err != nil {
			return err
		}
		if target, err = serveOn("olsim", sim); err != nil {
			return err
		}
		st.Endpoints.Simulator = target
	}
	if s.target, err = openlibrary.NewTarget(target); err != nil {
		return err
	}

	// The control API, which creates the topics.
	if s.runs, err = runstate.Open(ctx, s.redis); err != nil {
		return err
	}
	defer s.runs.Close()
	apiReg := prometheus.NewRegistry()
	if s.api, err = api.New(api.Options{Brokers: s.kafka, Target: s.target, Runs: s.runs, Partitions: s.plan.Partitions,
		Log: s.log.With("component", "api"), Registry: apiReg}); err != nil {
		return err
	}
	defer s.api.Close()
	if st.Endpoints.API, err = serveOn("api", s.api.Handler()); err != nil {
		return err
	}
	if err := s.api.Start(ctx); err != nil {
		return err
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		return err
	}
	defer kcl.Close()
	s.adm = kadm.NewClient(kcl)

	// Children: proxies first (workers fetch through them), graph writers,
	// then the minimum of workers.
	for i := range s.plan.Proxies {
		if err := s.addProxy(i); err != nil {
			return err
		}
	}
	for i := range s.plan.GraphWriters {
		if err := s.addChild(compGraphWriter, i); err != nil {
			return err
		}
	}
	defer s.stopAll()
	if s.plan.GridWorkers > 0 {
		if st.Endpoints.Grid, err = s.startGrid(ctx); err != nil {
			return err
		}
	}
	for i := range s.spec.MinWorkers {
		if err := s.addChild(compWorker, i); err != nil {
			return err
		}
	}

	// The metrics store: scrapes everything, answers PromQL.
	store, err := metricstore.Open(filepath.Join(s.dir, "tsdb"), s.log.With("component", "metricstore"))
	if err != nil {
		return err
	}
	defer store.Close()
	promMux := http.NewServeMux()
	store.Register(promMux)
	if st.Endpoints.Prometheus, err = serveOn("prometheus", promMux); err != nil {
		return err
	}

	// The supervisor's own endpoints.
	mux := http.NewServeMux()
	health := &serve.Health{}
	health.Register(mux)
	serve.Metrics(mux, "/metrics", s.reg)
	mux.HandleFunc("GET /status", s.serveStatus)
	adminURL, err := serveOn("supervisor", mux)
	if err != nil {
		return err
	}
	st.Admin = adminURL

	// Ready when every child is.
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	scrapeCtx, stopScrape := context.WithCancel(ctx)
	var scraping sync.WaitGroup
	scraping.Go(func() {
		store.Run(scrapeCtx, s.spec.ScrapeInterval, func() []metricstore.Target { return s.targets(st) })
	})
	defer func() { stopScrape(); scraping.Wait() }()
	health.SetReady(true)
	if err := writeJSON(filepath.Join(s.dir, stateFile), st); err != nil {
		return err
	}
	s.recordSettings()
	s.log.Info("stack ready", "api", st.Endpoints.API, "proxies", s.plan.Proxies, "max_workers", s.maxWorkers())

	t := time.NewTicker(s.spec.PollInterval)
	defer t.Stop()
	replicas := time.NewTicker(time.Second)
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
			st.Spec = s.spec
			if err := writeJSON(filepath.Join(s.dir, stateFile), st); err != nil {
				s.log.Error("writing the state", "err", err)
			}
		}
	}
}

// recordSettings appends the settings now in force to the stack's
// timeline, which collect reads to name and describe a run.
func (s *Supervisor) recordSettings() {
	if err := timeline.Append(s.dir, timeline.New(cluster.Local, s.plan, s.spec.ProxyAssignment, s.spec)); err != nil {
		s.log.Error("recording the settings", "err", err)
	}
}

// reload applies a changed spec.json without stopping the stack: the
// broker, Redis, the simulator and the API keep the run in progress;
// partitions grow, proxies and graph writers are added or stopped, and
// workers are restarted one at a time (each drains; what it had not
// finished is redelivered) when their proxies or assignment changed.
func (s *Supervisor) reload(ctx context.Context) error {
	var spec Spec
	if err := readJSON(filepath.Join(s.dir, specFile), &spec); err != nil {
		return err
	}
	spec.defaults()
	if fixed := spec.fixedFields(s.spec); len(fixed) > 0 {
		return fmt.Errorf("cannot change %s while up", strings.Join(fixed, ", "))
	}
	plan, err := budget.Compute(spec.Budget)
	if err != nil {
		return err
	}
	if plan.Partitions > s.plan.Partitions {
		kcl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
		if err != nil {
			return err
		}
		err = topics.Ensure(ctx, kcl, plan.Partitions)
		kcl.Close()
		if err != nil {
			return err
		}
	}
	s.log.Info("applying new settings", "proxies", fmt.Sprintf("%d→%d", s.plan.Proxies, plan.Proxies),
		"graph_writers", fmt.Sprintf("%d→%d", s.plan.GraphWriters, plan.GraphWriters), "max_workers", plan.MaxWorkers)
	oldProxies, oldAssignment := s.plan.Proxies, s.spec.ProxyAssignment
	s.spec, s.plan = spec, plan
	// In force from now: new proxies and graph writers start at once, and
	// workers roll onto them over the next seconds.
	s.recordSettings()
	for i := oldProxies; i < plan.Proxies; i++ {
		if err := s.addProxy(i); err != nil {
			return err
		}
	}
	for _, c := range s.shrink(compProxy, plan.Proxies) {
		c.stop(40 * time.Second)
	}
	if len(s.proxies) > plan.Proxies {
		s.proxies = s.proxies[:plan.Proxies]
	}
	for i := len(s.childrenOf(compGraphWriter)); i < plan.GraphWriters; i++ {
		if err := s.addChild(compGraphWriter, i); err != nil {
			return err
		}
	}
	for _, c := range s.shrink(compGraphWriter, plan.GraphWriters) {
		c.stop(40 * time.Second)
	}
	if plan.Proxies != oldProxies || spec.ProxyAssignment != oldAssignment {
		// Roll the workers onto the new pool, one at a time.
		for _, c := range s.childrenOf(compWorker) {
			c.stop(40 * time.Second)
			if err := s.replaceChild(c); err != nil {
				return err
			}
		}
	}
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	s.log.Info("new settings applied")
	return nil
}

func (s *Supervisor) childrenOf(component string) []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*child(nil), s.children[component]...)
}

// shrink removes a component's children beyond n and returns them.
func (s *Supervisor) shrink(component string, n int) []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.children[component]
	if len(cs) <= n {
		return nil
	}
	s.children[component] = cs[:n]
	return cs[n:]
}

// replaceChild starts a new instance in the place of a stopped one.
func (s *Supervisor) replaceChild(old *child) error {
	s.mu.Lock()
	cs := s.children[old.component]
	for i, c := range cs {
		if c == old {
			s.children[old.component] = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return s.addChild(old.component, old.index)
}

// targets are the scrape targets now: the API, the supervisor (its own
// series and the simulator's) and every child.
func (s *Supervisor) targets(st State) []metricstore.Target {
	out := []metricstore.Target{
		{Job: "api", Instance: "api-0", URL: st.Endpoints.API + "/metrics"},
		{Job: "supervisor", Instance: "supervisor-0", URL: st.Admin + "/metrics"},
	}
	for _, c := range s.allChildren() {
		path := "/metrics"
		if c.component == compGrid {
			path = "/metrics/prometheus" // its /metrics is the seed's JSON
		}
		out = append(out, metricstore.Target{Job: c.component, Instance: fmt.Sprintf("%s-%d", c.component, c.index),
			URL: "http://" + c.admin + path})
	}
	return out
}

// maxWorkers is the budget's cap, and no more than the frontier's
// partitions (KEDA's Kafka trigger without allowIdleConsumers).
func (s *Supervisor) maxWorkers() int {
	return max(s.spec.MinWorkers, min(s.plan.MaxWorkers, s.plan.Partitions))
}

func (s *Supervisor) addProxy(i int) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	s.proxies = append(s.proxies, "http://"+listen)
	return s.startChild(compProxy, i, []string{"--listen", listen,
		"--egress-ip", fmt.Sprintf("127.0.0.%d", 2+i), "--allow", s.target.Host()})
}

// addChild starts the next instance of a worker or graph writer.
func (s *Supervisor) addChild(component string, i int) error {
	args := []string{"--kafka", strings.Join(s.kafka, ","), "--redis", s.redis}
	switch component {
	case compWorker:
		args = append(args, "--target", s.target.String(), "--proxy-pool", strings.Join(s.proxies, ","))
		if s.spec.ProxyAssignment != "" {
			args = append(args, "--proxy-assignment", s.spec.ProxyAssignment)
		}
		if !s.target.IsReal() {
			// The simulator's per-IP JSON limit, scaled like the simulator.
			args = append(args, "--egress-rate", strconv.FormatFloat(3*s.spec.SimTimeFactor, 'f', -1, 64), "--egress-burst", "1")
		}
	case compGraphWriter:
		args = append(args, "--graph-store", "sqlite:"+filepath.Join(s.dir, "graph.db"))
	}
	return s.startChild(component, i, args)
}

// startGrid installs playwright-core once (the browser workers would race
// to), then starts the browser workers and the grid proxy on the embedded
// Redis as their registry; it returns the grid's WebSocket URL.
func (s *Supervisor) startGrid(ctx context.Context) (string, error) {
	dir, err := playwright.DefaultModulesDir()
	if err != nil {
		return "", err
	}
	if _, err := playwright.Ensure(ctx, dir, s.log); err != nil {
		return "", err
	}
	for i := range s.plan.GridWorkers {
		if err := s.startChild(compBrowser, i, []string{"--redis", s.redis, "--id", fmt.Sprintf("browser-%d", i)}); err != nil {
			return "", err
		}
	}
	if err := s.startChild(compGrid, 0, []string{"--redis", s.redis}); err != nil {
		return "", err
	}
	return "ws://" + s.childrenOf(compGrid)[0].admin + "/", nil
}

func (s *Supervisor) startChild(component string, i int, args []string) error {
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	listenFlag, command := "--admin-listen", component
	if servesOnListen[component] {
		listenFlag = "--listen"
	}
	if c, ok := runCommand[component]; ok {
		command = c
	}
	c := &child{component: component, index: i, admin: admin, exe: s.exe,
		args:    append(append([]string{"run", command}, args...), listenFlag, admin),
		logPath: filepath.Join(s.dir, logDir, fmt.Sprintf("%s-%d.log", component, i)),
		log:     s.log, restarted: func() { s.m.restarts.WithLabelValues(component).Inc() }}
	if err := c.start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.children[component] = append(s.children[component], c)
	s.mu.Unlock()
	return nil
}

// waitReady waits until every child answers /readyz.
func (s *Supervisor) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		notReady := ""
		for _, c := range s.allChildren() {
			if !c.ready() {
				notReady = fmt.Sprintf("%s-%d", c.component, c.index)
				break
			}
		}
		if notReady == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready after %v: see %s", notReady, timeout, filepath.Join(s.dir, logDir))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Supervisor) allChildren() []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*child
	for _, comp := range childComponents {
		out = append(out, s.children[comp]...)
	}
	return out
}

// hpaScaleUpPeriod and hpaScaleUpLimit are the Horizontal Pod
// Autoscaler's default scale-up policy, which a KEDA ScaledObject gets on
// Kubernetes: per 15 s, at most double the replicas or add 4, whichever is
// more. Jumping from 1 to 32 workers at once, as the local autoscaler
// did, started 31 processes together: on a 2-core machine that stalled
// the crawl for seconds while one worker already kept 5 egress busy.
const hpaScaleUpPeriod = 15 * time.Second

func hpaScaleUpLimit(base int) int { return max(2*base, base+4) }

// autoscale applies KEDA's Kafka rule: desired workers = ceil(frontier lag
// / lag threshold), within [min, max]; up as fast as the HPA's scale-up
// policy allows, down after a cooldown.
func (s *Supervisor) autoscale(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lag, err := topics.Lag(lctx, s.adm, topics.WorkerGroup, topics.Frontier)
	if err != nil {
		s.log.Warn("autoscaler: reading lag", "err", err)
		return
	}
	var total int64
	for _, l := range lag {
		total += l.Lag
	}
	s.m.lag.Set(float64(total))
	desired := int(math.Ceil(float64(total) / float64(s.spec.LagThreshold)))
	desired = max(s.spec.MinWorkers, min(desired, s.maxWorkers()))
	s.mu.Lock()
	current := len(s.children[compWorker])
	s.mu.Unlock()
	if now := time.Now(); now.Sub(s.scaleWindow) >= hpaScaleUpPeriod {
		s.scaleWindow, s.scaleBase = now, current
	}
	desired = min(desired, max(current, hpaScaleUpLimit(s.scaleBase)))
	s.m.desired.WithLabelValues(compWorker).Set(float64(desired))
	switch {
	case desired > current:
		s.log.Info("scaling workers up", "from", current, "to", desired, "lag", total)
		for i := current; i < desired; i++ {
			if err := s.addChild(compWorker, i); err != nil {
				s.log.Error("starting a worker", "err", err)
				return
			}
		}
		s.lastUp = time.Now()
	case desired < current && time.Since(s.lastUp) >= s.spec.Cooldown:
		s.log.Info("scaling workers down", "from", current, "to", desired, "lag", total)
		s.mu.Lock()
		victims := s.children[compWorker][desired:]
		s.children[compWorker] = s.children[compWorker][:desired]
		s.mu.Unlock()
		for _, c := range victims {
			go c.stop(40 * time.Second) // drains its jobs; unfinished ones are redelivered
		}
	}
}

func (s *Supervisor) updateReplicaMetrics() {
	for _, comp := range []string{compProxy, compGraphWriter, compWorker} {
		s.mu.Lock()
		cs := append([]*child(nil), s.children[comp]...)
		s.mu.Unlock()
		var n atomic.Int64
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				if c.ready() {
					n.Add(1)
				}
			})
		}
		wg.Wait()
		s.m.replicas.WithLabelValues(comp).Set(float64(n.Load()))
		if comp != compWorker {
			s.m.desired.WithLabelValues(comp).Set(float64(len(cs)))
		}
	}
}

// stopAll stops workers first (they drain), then graph writers, then
// proxies.
func (s *Supervisor) stopAll() {
	for _, comp := range []string{compWorker, compGraphWriter, compGrid, compBrowser, compProxy} {
		s.mu.Lock()
		cs := s.children[comp]
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() { c.stop(40 * time.Second) })
		}
		wg.Wait()
	}
}

// child is one supervised process.
type child struct {
	component, admin, exe, logPath string
	index                          int
	args                           []string
	log                            *slog.Logger
	restarted                      func()

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
	stopping bool
	exited   chan struct{}
}

func (c *child) start() error {
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.exe, c.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// If the supervisor dies, its children go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s-%d: %w", c.component, c.index, err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	started := time.Now()
	go func() {
		err := cmd.Wait()
		f.Close()
		close(exited)
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return
		}
		c.mu.Lock()
		c.restarts++
		n := c.restarts
		c.mu.Unlock()
		c.restarted()
		backoff := min(time.Duration(1<<min(n-1, 5))*time.Second, 30*time.Second)
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		c.log.Warn("child died; restarting", "child", fmt.Sprintf("%s-%d", c.component, c.index), "err", err, "restarts", n, "in", backoff)
		time.Sleep(backoff)
		c.mu.Lock()
		stopping = c.stopping
		c.mu.Unlock()
		if !stopping {
			if err := c.start(); err != nil {
				c.log.Error("restart failed", "child", c.component, "err", err)
			}
		}
	}()
	return nil
}

// ready asks the child's /readyz.
func (c *child) ready() bool {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + c.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *child) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// stop sends SIGTERM and waits up to timeout, then kills.
func (c *child) stop(timeout time.Duration) {
	c.mu.Lock()
	c.stopping = true
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-exited
	}
}
