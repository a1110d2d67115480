package grid_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/runtime/grid"
)

// These tests run the real thing: crawlctl's grid and browser workers as
// processes, redis-server, Chromium driven by playwright-core's launch
// server, and a real Playwright client (testdata/client.cjs) connecting
// through the grid.

type stack struct {
	bin, redis, pw string
	page           string // a local page whose title is "grid test page"
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{pw: testenv.Playwright(t), bin: testenv.Crawlctl(t), redis: testenv.Redis(t)}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>grid test page</title><p>hello")
	}))
	t.Cleanup(page.Close)
	s.page = page.URL
	return s
}

// proc is a crawlctl process with its log.
type proc struct {
	cmd  *exec.Cmd
	log  string
	base string // http://127.0.0.1:port
}

func (s *stack) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &proc{log: filepath.Join(t.TempDir(), name+".log"), base: "http://" + addr}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(s.bin, append(append([]string{"run"}, args...), "--listen", addr)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Dir(filepath.Dir(s.pw)))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- %s log ---\n%s", name, lastLines(string(b), 40))
		}
	})
	testenv.Eventually(t, 60*time.Second, name+" ready", func() bool {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// pidReader reads the pid a --pid-file holds now (0 while there is none).
func pidReader(path string) func() int {
	return func() int {
		b, _ := os.ReadFile(path)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (s *stack) browser(t *testing.T, name string, args ...string) *proc {
	return s.start(t, name, append([]string{"browser", "--redis", s.redis, "--playwright-dir", s.pw}, args...)...)
}

// grid starts a grid proxy on the stack's registry. Its clients may wait
// up to 2 minutes for a worker (a test's own --worker-select-timeout comes
// later and wins): on a slow machine a Chromium session or restart takes
// long, and the test's behaviour, not the machine's speed, must decide.
func (s *stack) grid(t *testing.T, args ...string) *proc {
	return s.start(t, "grid", append([]string{"grid", "--redis", s.redis, "--health-interval", "500ms", "--worker-select-timeout", "2m"}, args...)...)
}

func wsURL(p *proc) string { return "ws" + strings.TrimPrefix(p.base, "http") + "/" }

type result struct {
	I           int    `json:"i"`
	OK          bool   `json:"ok"`
	Title       string `json:"title"`
	ConnectMs   int64  `json:"connectMs"`
	StartedAt   int64  `json:"startedAt"`
	ConnectedAt int64  `json:"connectedAt"`
	EndedAt     int64  `json:"endedAt"`
	Error       string `json:"error"`
}

type clientPlan struct {
	WS          string `json:"ws"`
	Sessions    int    `json:"sessions"`
	Concurrency int    `json:"concurrency"`
	URL         string `json:"url"`
	HoldMs      int    `json:"holdMs"`
	// ConnectTimeoutMs bounds the client's connect, queueing included
	// (150 s when 0, above the grid helper's 2m select timeout).
	ConnectTimeoutMs int `json:"connectTimeoutMs,omitempty"`
}

// clients runs the Playwright client with plan and returns its sessions.
func (s *stack) clients(t *testing.T, plan clientPlan) []result {
	t.Helper()
	b, _ := json.Marshal(plan)
	cmd := exec.Command("node", "testdata/client.cjs", string(b))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(s.pw, "node_modules"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("playwright client: %v\n%s", err, stderr.String())
	}
	var rs []result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("client output %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	if len(rs) != plan.Sessions {
		t.Fatalf("client reported %d sessions, want %d\n%s", len(rs), plan.Sessions, stderr.String())
	}
	return rs
}

func workers(t *testing.T, g *proc) []grid.WorkerView {
	t.Helper()
	resp, err := http.Get(g.base + "/api/v1/workers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Workers []grid.WorkerView }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Workers
}

func activeConnections(t *testing.T, g *proc) int {
	t.Helper()
	resp, err := http.Get(g.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m["activeConnections"]
}

func waitWorkers(t *testing.T, g *proc, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d workers available", n), func() bool {
		avail := 0
		for _, w := range workers(t, g) {
			if w.Status == "available" {
				avail++
			}
		}
		return avail == n
	})
}

// sampler polls f every 20 ms until stopped and keeps the largest value.
func sampler(f func() int) (stop func() int) {
	var mu sync.Mutex
	peak := 0
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			v := f()
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int { close(done); <-finished; mu.Lock(); defer mu.Unlock(); return peak }
}

func TestConcurrentSessionsReadTitles(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser")
	g := s.grid(t)
	waitWorkers(t, g, 1)
	rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 3, Concurrency: 3, URL: s.page, HoldMs: 500})
	for _, r := range rs {
		if !r.OK || r.Title != "grid test page" {
			t.Errorf("session %d: ok=%v title=%q err=%s", r.I, r.OK, r.Title, r.Error)
		}
	}
	// All three were live at once.
	for _, a := range rs {
		for _, b := range rs {
			if a.StartedAt >= b.EndedAt {
				t.Errorf("session %d started after %d ended: not concurrent", a.I, b.I)
			}
		}
	}
	if got := activeConnections(t, g); got != 0 {
		t.Errorf("activeConnections %d after every session closed", got)
	}
}

func TestFullWorkerQueuesThenServes(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser", "--max-concurrent-sessions", "5")
	// Queued sessions wait for the first five to end; on a slow machine
	// that takes long, so the timeouts are far above it: the queue, not the
	// machine's speed, decides who waits.
	g := s.grid(t, "--worker-select-timeout", "2m")
	waitWorkers(t, g, 1)
	peak := sampler(func() int { return activeConnections(t, g) })
	rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 10, Concurrency: 10, URL: s.page, HoldMs: 1500, ConnectTimeoutMs: 180_000})
	if p := peak(); p != 5 {
		t.Errorf("peak active sessions %d, want 5 (one worker, five slots)", p)
	}
	firstEnd := int64(math.MaxInt64)
	for _, r := range rs {
		if r.OK {
			firstEnd = min(firstEnd, r.EndedAt)
		}
	}
	waited := 0
	for _, r := range rs {
		if !r.OK {
			t.Errorf("session %d failed: %s", r.I, r.Error)
		}
		if r.ConnectedAt >= firstEnd { // got a slot only once a session had ended
			waited++
		}
	}
	// Five slots: at most five sessions can have connected before the
	// first one ended, so at least five waited (more when a first connect
	// is slow on a busy machine).
	if waited < 5 {
		t.Errorf("%d sessions waited for a slot, want at least 5", waited)
	}
}

func TestFullWorkerAnswers503AfterTimeout(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser", "--max-concurrent-sessions", "5")
	g := s.grid(t, "--worker-select-timeout", "1s")
	// A second grid on the same registry, whose clients wait long, for
	// the full queue.
	gq := s.grid(t, "--worker-select-timeout", "60s", "--queue-size", "2")
	waitWorkers(t, g, 1)
	// Five Playwright clients hold every slot.
	held := make(chan []result, 1)
	go func() {
		// Held long enough for every step below on a slow machine.
		held <- s.clients(t, clientPlan{WS: wsURL(g), Sessions: 5, Concurrency: 5, URL: s.page, HoldMs: 30_000})
	}()
	testenv.Eventually(t, 20*time.Second, "five live sessions", func() bool { return activeConnections(t, g) == 5 })

	// A sixth waits the select timeout, then gets the seed's 503 body.
	start := time.Now()
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(g), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("sixth session: %v %v, want 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(body)); got != `{"error":{"code":503,"message":"No available servers"}}` {
		t.Errorf("503 body %s", got)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("503 after %v, before the 1s select timeout", waited)
	}

	// With the queue full (2 waiting), one more gets 429 at once; the two
	// are served once the held sessions end.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			c, _, err := websocket.DefaultDialer.Dial(wsURL(gq), nil)
			if err != nil {
				t.Errorf("a queued client: %v", err)
				return
			}
			c.Close()
		})
	}
	testenv.Eventually(t, 30*time.Second, "two clients queued", func() bool {
		return strings.Contains(prom(t, gq), "crawl_grid_queue_clients 2")
	})
	start = time.Now()
	_, resp, err = websocket.DefaultDialer.Dial(wsURL(gq), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("client beyond the queue: %v %v, want 429", err, resp)
	}
	if d := time.Since(start); d > 10*time.Second { // far below the 60s a queued client would wait
		t.Errorf("429 took %v; it should be at once", d)
	}
	wg.Wait()
	for _, r := range <-held {
		if !r.OK {
			t.Errorf("held session %d: %s", r.I, r.Error)
		}
	}
}

func prom(t *testing.T, g *proc) string {
	t.Helper()
	resp, err := http.Get(g.base + "/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestLifetimeRestartsAreStaggered(t *testing.T) {
	s := newStack(t)
	for i := range 3 {
		s.browser(t, fmt.Sprint("browser", i), "--max-lifetime-sessions", "10", "--id", fmt.Sprint("w", i))
	}
	g := s.grid(t)
	waitWorkers(t, g, 3)
	peakDraining := sampler(func() int {
		n := 0
		for _, w := range workers(t, g) {
			if w.Status == "draining" {
				n++
			}
		}
		return n
	})
	rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 60, Concurrency: 1, URL: s.page})
	if p := peakDraining(); p != 1 {
		t.Errorf("at most %d workers drained at once, want exactly 1", p)
	}
	for _, r := range rs {
		if !r.OK {
			t.Errorf("session %d failed: %s", r.I, r.Error)
		}
	}
	m := prom(t, g)
	restarts := metricValue(m, "crawl_grid_worker_restarts_total")
	if restarts < 4 {
		t.Errorf("%v shutdown commands for 60 sessions at lifetime 10, want at least 4", restarts)
	}
	t.Logf("restarts: %v", restarts)
}

func metricValue(exposition, name string) float64 {
	for line := range strings.SplitSeq(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return -1
}

func TestKilledWorkerGetsNoSession(t *testing.T) {
	s := newStack(t)
	dead := s.browser(t, "browser-a", "--id", "a") // "a" wins ties: chosen first
	s.browser(t, "browser-b", "--id", "b")
	g := s.grid(t)
	waitWorkers(t, g, 2)
	dead.cmd.Process.Signal(syscall.SIGKILL)
	// At once, before any health check: the dial to a fails, the session
	// goes to b, and the client sees nothing.
	rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 6, Concurrency: 2, URL: s.page})
	for _, r := range rs {
		if !r.OK {
			t.Errorf("session %d failed: %s", r.I, r.Error)
		}
	}
	for _, w := range workers(t, g) {
		if w.ID == "a" && (w.Lifetime != 0 || w.Active != 0) {
			t.Errorf("the killed worker counts %d sessions (%d active); failed dials are undone", w.Lifetime, w.Active)
		}
		if w.ID == "b" && w.Lifetime != 6 {
			t.Errorf("worker b served %d sessions, want 6", w.Lifetime)
		}
	}
}

func TestTwoGridsShareOneRegistry(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser", "--max-concurrent-sessions", "5")
	g1, g2 := s.grid(t), s.grid(t)
	waitWorkers(t, g1, 1)
	peak := sampler(func() int { return max(activeConnections(t, g1), activeConnections(t, g2)) })
	var wg sync.WaitGroup
	var all []result
	var mu sync.Mutex
	for _, g := range []*proc{g1, g2} {
		wg.Go(func() {
			rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 8, Concurrency: 4, URL: s.page, HoldMs: 300})
			mu.Lock()
			all = append(all, rs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if p := peak(); p > 5 || p < 4 {
		t.Errorf("peak %d active sessions across two grids, want at most 5 (and busy)", p)
	}
	for _, r := range all {
		if !r.OK {
			t.Errorf("session failed: %s", r.Error)
		}
	}
	if a, b := activeConnections(t, g1), activeConnections(t, g2); a != 0 || b != 0 {
		t.Errorf("after every session: grids report %d and %d active, want 0", a, b)
	}
	ws := workers(t, g2)
	if len(ws) != 1 || ws[0].Active != 0 || ws[0].Lifetime != 16 {
		t.Errorf("after 16 sessions through two grids: %+v, want active 0, lifetime 16", ws)
	}
}

// TestRestartAndStopKeepLiveSessions: a session held across a SIGHUP (the
// listener goes to a new process) and then a SIGTERM of that process (a
// drain) ends normally; a session started after the hand-off is served by
// the new process.
func TestRestartAndStopKeepLiveSessions(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser")
	pidFile := filepath.Join(t.TempDir(), "grid.pid")
	g := s.grid(t, "--pid-file", pidFile)
	waitWorkers(t, g, 1)
	pid := pidReader(pidFile)
	first := pid()
	held := make(chan []result, 1)
	go func() {
		// Held far longer than the hand-off takes on a slow machine, so the
		// session is live through it.
		held <- s.clients(t, clientPlan{WS: wsURL(g), Sessions: 1, URL: s.page, HoldMs: 25_000})
	}()
	testenv.Eventually(t, 20*time.Second, "a live session", func() bool { return activeConnections(t, g) == 1 })
	syscall.Kill(first, syscall.SIGHUP)
	testenv.Eventually(t, 20*time.Second, "the new grid process", func() bool { return pid() != first && pid() != 0 })
	after := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 1, URL: s.page})
	if !after[0].OK {
		t.Errorf("a session after the hand-off failed: %s", after[0].Error)
	}
	second := pid()
	late := make(chan []result, 1)
	go func() {
		late <- s.clients(t, clientPlan{WS: wsURL(g), Sessions: 1, URL: s.page, HoldMs: 8000})
	}()
	testenv.Eventually(t, 20*time.Second, "two live sessions", func() bool { return activeConnections(t, g) == 2 })
	syscall.Kill(second, syscall.SIGTERM)
	for _, rs := range [][]result{<-held, <-late} {
		if !rs[0].OK {
			t.Errorf("a session live through a restart or a drain failed: %s", rs[0].Error)
		}
	}
	testenv.Eventually(t, time.Minute, "the old grid process to exit", func() bool { return syscall.Kill(first, 0) != nil })
}

// TestWithoutRedis: a grid listing its workers keeps an in-memory
// registry, fed by polling their /status.
func TestWithoutRedis(t *testing.T) {
	s := newStack(t)
	w := s.start(t, "browser", "browser", "--playwright-dir", s.pw, "--max-lifetime-sessions", "2")
	g := s.start(t, "grid", "grid", "--worker", w.base, "--health-interval", "300ms", "--worker-select-timeout", "2m")
	waitWorkers(t, g, 1)
	rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 4, Concurrency: 1, URL: s.page})
	for _, r := range rs {
		if !r.OK || r.Title != "grid test page" {
			t.Errorf("session %d: %s", r.I, r.Error)
		}
	}
	// Lifetime 2: the worker restarted after the 2nd and the 4th session,
	// and the grid saw the new browser generation each time.
	testenv.Eventually(t, 20*time.Second, "the worker back with lifetime 0", func() bool {
		ws := workers(t, g)
		return len(ws) == 1 && ws[0].Status == "available" && ws[0].Lifetime == 0
	})
	if got := metricValue(prom(t, g), "crawl_grid_worker_restarts_total"); got < 2 {
		t.Errorf("%v shutdown commands, want 2", got)
	}
}
