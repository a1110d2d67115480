package local

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/metricstore"
	"github.com/crawlctl/crawlctl/pkg/playwright"
)

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

// stopOrder: workers first (they drain), then graph writers, the grid,
// and proxies last.
var stopOrder = []string{compWorker, compGraphWriter, compGrid, compBrowser, compProxy}

// runCommand is the `crawlctl run` command of a component, where the two
// names differ.
var runCommand = map[string]string{compGrid: "grid"}

// servesOnListen are the components whose one --listen address also
// serves /readyz and /metrics (no --admin-listen).
var servesOnListen = map[string]bool{compGrid: true, compBrowser: true}

// Restarts of a child that died: 1 s, doubling to at most maxBackoff; a
// child that ran longer than stableAfter starts again from 1 s.
const (
	maxBackoff  = 30 * time.Second
	stableAfter = time.Minute
	// probeTimeout bounds one /readyz request to a child.
	probeTimeout = time.Second
)

// startChildren starts the proxies first (workers fetch through them), the
// graph writers, the grid when the plan has one, then the minimum of
// workers.
func (s *Supervisor) startChildren(ctx context.Context, st *State) error {
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
	if s.plan.GridWorkers > 0 {
		var err error
		if st.Endpoints.Grid, err = s.startGrid(ctx); err != nil {
			return err
		}
	}
	for i := range s.spec.MinWorkers {
		if err := s.addChild(compWorker, i); err != nil {
			return err
		}
	}
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
func (s *Supervisor) targets(api, admin string) []metricstore.Target {
	out := []metricstore.Target{
		{Job: "api", Instance: "api-0", URL: api + "/metrics"},
		{Job: "supervisor", Instance: "supervisor-0", URL: admin + "/metrics"},
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
		if s.egressRate > 0 {
			// The simulator's per-IP JSON limit, scaled like the simulator.
			args = append(args, "--egress-rate", strconv.FormatFloat(s.egressRate, 'f', -1, 64), "--egress-burst", "1")
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
		if err := s.addBrowser(i); err != nil {
			return "", err
		}
	}
	listen := s.spec.GridListen
	if listen == "" {
		listen = defaultGridListen
	}
	if err := s.startChildAt(compGrid, 0, listen, []string{"--redis", s.redis}); err != nil {
		return "", err
	}
	return s.gridEndpoint(), nil
}

func (s *Supervisor) addBrowser(i int) error {
	return s.startChild(compBrowser, i, []string{"--redis", s.redis, "--id", fmt.Sprintf("browser-%d", i)})
}

// gridEndpoint is the grid's WebSocket URL, empty without a grid.
func (s *Supervisor) gridEndpoint() string {
	if g := s.childrenOf(compGrid); len(g) > 0 {
		return "ws://" + g[0].admin + "/"
	}
	return ""
}

// scaleGrid brings the grid to n browser workers in place: the grid starts
// with the first and stops with the last; live sessions are untouched, and
// a worker removed leaves the registry at once and drains its sessions
// before it stops.
func (s *Supervisor) scaleGrid(ctx context.Context, n int) error {
	have := len(s.childrenOf(compBrowser))
	switch {
	case n == have:
		return nil
	case have == 0:
		_, err := s.startGrid(ctx)
		return err
	case n > have:
		for i := have; i < n; i++ {
			if err := s.addBrowser(i); err != nil {
				return err
			}
		}
		return nil
	}
	if n == 0 {
		stopDraining(s.shrink(compGrid, 0)) // the grid first: its sessions end with it
	}
	stopDraining(s.shrink(compBrowser, n))
	return nil
}

// stopDraining stops children at once, each given drainTimeout.
func stopDraining(cs []*child) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.stop(drainTimeout) })
	}
	wg.Wait()
}

func (s *Supervisor) startChild(component string, i int, args []string) error {
	return s.startChildAt(component, i, "", args)
}

// startChildAt starts a child whose admin (or, for the grid and browser
// workers, only) address is admin; empty picks a free port.
func (s *Supervisor) startChildAt(component string, i int, admin string, args []string) error {
	if admin == "" {
		var err error
		if admin, err = freeAddr(); err != nil {
			return err
		}
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
		case <-time.After(readyPollInterval):
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

// stopAll stops every child, a component at a time in stopOrder.
func (s *Supervisor) stopAll() {
	for _, comp := range stopOrder {
		stopDraining(s.childrenOf(comp))
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
		c.restartAfter(err, started)
	}()
	return nil
}

// restartAfter starts the child again after it died (not when it was
// stopped), after a backoff.
func (c *child) restartAfter(err error, started time.Time) {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return
	}
	c.restarts++
	n := c.restarts
	c.mu.Unlock()
	c.restarted()
	backoff := min(time.Duration(1<<min(n-1, 5))*time.Second, maxBackoff)
	if time.Since(started) > stableAfter {
		backoff = time.Second
	}
	c.log.Warn("child died; restarting", "child", fmt.Sprintf("%s-%d", c.component, c.index), "err", err, "restarts", n, "in", backoff)
	time.Sleep(backoff)
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if !stopping {
		if err := c.start(); err != nil {
			c.log.Error("restart failed", "child", c.component, "err", err)
		}
	}
}

// ready asks the child's /readyz.
func (c *child) ready() bool {
	client := http.Client{Timeout: probeTimeout}
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
