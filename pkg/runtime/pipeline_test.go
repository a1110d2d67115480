// Integration tests of the crawl pipeline over TCP with real parts: a
// Kafka-protocol broker (kfake), redis-server, the Open Library simulator,
// the control API, crawl workers and the graph writer on SQLite.
package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/crawl"
	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/graphstore"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/runtime/graphwriter"
	"github.com/crawlctl/crawlctl/pkg/runtime/olsim"
	"github.com/crawlctl/crawlctl/pkg/runtime/proxy"
	"github.com/crawlctl/crawlctl/pkg/runtime/worker"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// TestMain lets the test binary act as a worker process, so a test can
// kill a real worker with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("CRAWLCTL_TEST_HELPER") == "worker" {
		os.Exit(helperWorker())
	}
	os.Exit(m.Run())
}

func helperWorker() int {
	ctx := context.Background()
	runs, err := runstate.Open(ctx, os.Getenv("HELPER_REDIS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tgt, _ := openlibrary.NewTarget(os.Getenv("HELPER_TARGET"))
	jobs, _ := strconv.Atoi(os.Getenv("HELPER_CONCURRENT_JOBS"))
	w, err := worker.New(worker.Options{Brokers: strings.Split(os.Getenv("HELPER_BROKERS"), ","), Target: tgt,
		Store: runs, SessionTimeout: 6 * time.Second, ConcurrentJobs: jobs})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w.Run(ctx) // until killed
	return 0
}

// stack is a running pipeline.
type stack struct {
	t       testing.TB
	brokers []string
	redis   string
	runs    *runstate.Store
	target  openlibrary.Target
	apiURL  string
	graph   *graphstore.Store
	simReg  *prometheus.Registry
	ctx     context.Context
	wg      sync.WaitGroup
}

func startStack(t testing.TB, sim olsim.Options, partitions int) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{t: t, brokers: testenv.Kafka(t), redis: testenv.Redis(t), ctx: ctx}
	t.Cleanup(func() { cancel(); s.wg.Wait() })
	var err error
	if s.runs, err = runstate.Open(ctx, s.redis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.runs.Close() })

	s.simReg = prometheus.NewRegistry()
	sv, err := olsim.New(sim, s.simReg)
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sv)
	t.Cleanup(simSrv.Close)
	if s.target, err = openlibrary.NewTarget(simSrv.URL); err != nil {
		t.Fatal(err)
	}

	a, err := api.New(api.Options{Brokers: s.brokers, Target: s.target, Runs: s.runs, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(a.Handler())
	t.Cleanup(apiSrv.Close)
	s.apiURL = apiSrv.URL

	if s.graph, err = graphstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "graph.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.graph.Close() })
	gw, err := graphwriter.New(graphwriter.Options{Brokers: s.brokers, Store: s.graph, Runs: s.runs, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Go(func() { gw.Run(ctx) })
	return s
}

// startWorker runs an in-process worker until the returned stop is called.
func (s *stack) startWorker(opts worker.Options) (stop func()) {
	s.t.Helper()
	opts.Brokers, opts.Target, opts.Store = s.brokers, s.target, s.runs
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 6 * time.Second
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	w, err := worker.New(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.wg.Go(func() { w.Run(ctx); close(done) })
	return func() { cancel(); <-done }
}

// startWorkerProcess runs a worker in a child process; prefix (such as
// taskset -c 1) runs before it, env adds to its environment.
func (s *stack) startWorkerProcess(prefix []string, env ...string) *exec.Cmd {
	s.t.Helper()
	argv := append(append([]string{}, prefix...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "CRAWLCTL_TEST_HELPER=worker", "HELPER_REDIS="+s.redis,
		"HELPER_TARGET="+s.target.String(), "HELPER_BROKERS="+strings.Join(s.brokers, ",")), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// seed creates a run through the HTTP API.
func (s *stack) seed(req api.RunRequest) *runstate.Run {
	s.t.Helper()
	body, _ := json.Marshal(req)
	resp, err := http.Post(s.apiURL+"/api/v1/runs", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e map[string]any
		json.NewDecoder(resp.Body).Decode(&e)
		s.t.Fatalf("POST /api/v1/runs: %s %v", resp.Status, e)
	}
	var run runstate.Run
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil {
		s.t.Fatal(err)
	}
	return &run
}

func (s *stack) run(id string) *runstate.Run {
	s.t.Helper()
	r, err := s.runs.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func (s *stack) waitDrained(id string, timeout time.Duration) *runstate.Run {
	s.t.Helper()
	var r *runstate.Run
	testenv.Eventually(s.t, timeout, "run "+id+" to drain", func() bool {
		r = s.run(id)
		return r.State == runstate.StateDrained
	})
	return r
}

// producedEdges reads every edge of the run from the edges topic, deduped.
func (s *stack) producedEdges(run string) map[crawl.Edge]bool {
	s.t.Helper()
	cl := testenv.KafkaClient(s.t, s.brokers, kgo.ConsumeTopics(topics.Edges), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), topics.Edges)
	if err != nil {
		s.t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	out := map[crawl.Edge]bool{}
	for read := int64(0); read < want; {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fs := cl.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			s.t.Fatalf("read %d of %d edge records", read, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			var e crawl.Edge
			if err := crawl.Decode(r.Value, &e); err != nil {
				s.t.Fatal(err)
			}
			if e.Run == run {
				e.V = 0
				out[e] = true
			}
		})
	}
	return out
}

// checkRun asserts the accounting invariant and that no edge was lost.
func (s *stack) checkRun(r *runstate.Run) {
	s.t.Helper()
	c := r.Counters
	if c.Enqueued == 0 || c.Enqueued != c.Crawled+c.Deduped+c.DLQ {
		s.t.Errorf("accounting: enqueued %d != crawled %d + deduped %d + dlq %d", c.Enqueued, c.Crawled, c.Deduped, c.DLQ)
	}
	edges := s.producedEdges(r.ID)
	// Generous: tens of thousands of edges under -race on a busy machine.
	testenv.Eventually(s.t, 3*time.Minute, "the graph writer to store every edge", func() bool {
		_, n, err := s.graph.Counts(context.Background(), r.ID)
		return err == nil && n == int64(len(edges))
	})
	// The writer publishes the count just after its commit.
	testenv.Eventually(s.t, time.Minute, "the run to report every edge written", func() bool {
		r = s.run(r.ID)
		return r.Counters.EdgesWritten == int64(len(edges))
	})
	s.t.Logf("run %s: %+v, %d distinct edges", r.ID, r.Counters, len(edges))
}

func quietSim() olsim.Options {
	o := olsim.DefaultOptions()
	o.NoLimits = true
	return o
}

func TestPipelineDrainsWithExactAccounting(t *testing.T) {
	s := startStack(t, quietSim(), 8)
	defer s.startWorker(worker.Options{})()
	defer s.startWorker(worker.Options{})()
	run := s.seed(api.RunRequest{Name: "twenty", Seeds: openlibrary.Seeds})
	// Workers may have crawled already by the time the run is read back.
	if len(run.Seeds) != 20 || run.Counters.Enqueued < 20 || run.MaxDepth != 3 {
		t.Fatalf("new run: %+v", run)
	}
	r := s.waitDrained(run.ID, 5*time.Minute)
	if r.Counters.Crawled < 1000 || r.Counters.DLQ != 0 {
		t.Errorf("a 20-seed depth-3 crawl of the simulator: %+v", r.Counters)
	}
	s.checkRun(r)

	// The same seeds in a new run crawl again: dedupe is per run.
	run2 := s.seed(api.RunRequest{Name: "again", Seeds: openlibrary.Seeds[:2], MaxDepth: ptr(1)})
	r2 := s.waitDrained(run2.ID, 3*time.Minute)
	if r2.Counters.Crawled < 3 {
		t.Errorf("rerun crawled %d URLs: the first run's claims blocked it", r2.Counters.Crawled)
	}
	s.checkRun(r2)
}

func ptr[T any](v T) *T { return &v }

// TestWorkerKilledMidRunLosesNothing kills a worker process with SIGKILL
// while it holds jobs; another worker takes its partitions and the run
// drains with exact accounting and every edge stored.
func TestWorkerKilledMidRunLosesNothing(t *testing.T) {
	sim := quietSim()
	sim.Latency = 15 * time.Millisecond
	s := startStack(t, sim, 8)
	victim := s.startWorkerProcess(nil)
	run := s.seed(api.RunRequest{Name: "kill", Seeds: openlibrary.Seeds})
	testenv.Eventually(t, 3*time.Minute, "the victim to crawl 200 URLs", func() bool {
		return s.run(run.ID).Counters.Crawled >= 200
	})
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.Wait()
	killedAt := s.run(run.ID).Counters
	if killedAt.Finished() == killedAt.Enqueued {
		t.Fatal("the run drained before the kill; the test proves nothing")
	}
	defer s.startWorker(worker.Options{})()
	r := s.waitDrained(run.ID, 5*time.Minute)
	t.Logf("killed at %+v", killedAt)
	s.checkRun(r)
}

// TestRateLimitedURLsDoNotStallPartitions limits author pages hard; work
// pages keep flowing, and every frontier partition drains — including the
// ones holding author URLs, whose retries wait on the retry topic.
func TestRateLimitedURLsDoNotStallPartitions(t *testing.T) {
	sim := olsim.DefaultOptions()
	sim.Rules = []olsim.Rule{{Name: "authors", Prefix: "/authors/", PerSecond: 0.2, Burst: 1}}
	s := startStack(t, sim, 8)
	// Author retries back off 5s, 10s: far longer than the 40 works take
	// even on a slow machine, so the authors are still pending when the
	// works are done.
	defer s.startWorker(worker.Options{BackoffBase: 5 * time.Second, MaxAttempts: 3})()

	var seeds []string
	for i := 1; i <= 40; i++ {
		seeds = append(seeds, fmt.Sprintf("/works/OL%dW", i*64+1)) // exist: first works of author i
	}
	seeds = append(seeds, "OL9388A", "OL23919A", "OL26320A", "OL2162284A")
	run := s.seed(api.RunRequest{Name: "limited", Seeds: seeds, MaxDepth: ptr(0)})

	adm := kadm.NewClient(testenv.KafkaClient(t, s.brokers))
	testenv.Eventually(t, time.Minute, "all 40 works crawled and the frontier drained", func() bool {
		lag, err := topics.Lag(context.Background(), adm, topics.WorkerGroup, topics.Frontier)
		if err != nil {
			return false
		}
		for _, l := range lag {
			if l.Lag != 0 {
				return false
			}
		}
		return s.run(run.ID).Counters.Crawled >= 40
	})
	mid := s.run(run.ID).Counters
	if mid.Finished() == mid.Enqueued {
		t.Fatalf("every author finished already (%+v): the limit did not bite", mid)
	}
	if mid.Retried == 0 {
		t.Errorf("no retries scheduled: %+v", mid)
	}
	r := s.waitDrained(run.ID, 3*time.Minute)
	if r.Counters.Crawled+r.Counters.DLQ != 44 || r.DLQByReason[crawl.ReasonRateLimited] != r.Counters.DLQ {
		t.Errorf("final %+v, DLQ %v", r.Counters, r.DLQByReason)
	}
	s.checkRun(r)
}

// TestRobotsTxt: with --robots the worker never requests a disallowed path
// (its jobs go to the DLQ as robots_disallowed) and paces by Crawl-delay.
func TestRobotsTxt(t *testing.T) {
	sim := quietSim()
	sim.Disallow = []string{"/subjects/"}
	sim.CrawlDelay = 20 * time.Millisecond
	s := startStack(t, sim, 4)
	defer s.startWorker(worker.Options{Robots: true})()
	start := time.Now()
	run := s.seed(api.RunRequest{Seeds: []string{"OL17732W"}, MaxDepth: ptr(1)})
	r := s.waitDrained(run.ID, 2*time.Minute)
	elapsed := time.Since(start)
	if r.DLQByReason[crawl.ReasonRobots] == 0 || r.DLQByReason[crawl.ReasonRobots] != r.Counters.DLQ {
		t.Errorf("DLQ %v: want the work's subject pages refused by robots.txt", r.DLQByReason)
	}
	// Crawl-delay 20ms between fetches: the crawled URLs cannot all go at once.
	if minimum := time.Duration(r.Counters.Crawled-1) * 20 * time.Millisecond; elapsed < minimum {
		t.Errorf("%d fetches in %v: Crawl-delay not honoured (at least %v)", r.Counters.Crawled, elapsed, minimum)
	}
	s.checkRun(r)
}

// simCounter sums a simulator counter by client IP.
func (s *stack) simCounter(name string) map[string]float64 {
	mfs, err := s.simReg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "client_ip" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestCrawlThroughPacedEgressPool crawls through three real egress proxies
// (one loopback address each) against per-IP limits: every egress is used,
// the run drains with exact accounting, and pacing keeps 429s under 1%.
func TestCrawlThroughPacedEgressPool(t *testing.T) {
	sim := olsim.DefaultOptions()
	sim.TimeFactor = 20 // *.json: 60 requests/s per client IP, burst 5
	s := startStack(t, sim, 8)
	var proxies []string
	for i := range 3 {
		px, err := proxy.New(proxy.Options{Allow: []string{s.target.Host()}, EgressIP: net.IPv4(127, 0, 0, byte(i+2))})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go px.ServeListener(ln)
		t.Cleanup(func() { ln.Close() })
		proxies = append(proxies, "http://"+ln.Addr().String())
	}
	pool, err := egress.New(egress.Options{Proxies: proxies, Rate: 60, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	defer s.startWorker(worker.Options{Fetcher: pool, ConcurrentJobs: 20})()
	run := s.seed(api.RunRequest{Name: "egress", Seeds: openlibrary.Seeds, MaxDepth: ptr(2)})
	r := s.waitDrained(run.ID, 2*time.Minute)
	s.checkRun(r)
	requests, limited := s.simCounter("crawl_olsim_requests_total"), s.simCounter("crawl_olsim_rate_limited_total")
	var total, refused float64
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if requests[ip] < float64(r.Counters.Crawled)/6 {
			t.Errorf("egress %s made %v of %d requests: %v", ip, requests[ip], r.Counters.Crawled, requests)
		}
		total += requests[ip]
		refused += limited[ip]
	}
	t.Logf("%d URLs through 3 egress: %v requests, %v refused with 429", r.Counters.Crawled, total, refused)
	if refused > total/100 {
		t.Errorf("%v of %v requests were refused: pacing should keep 429s under 1%%", refused, total)
	}
}

func TestAPIRejectsBadSeeds(t *testing.T) {
	s := startStack(t, quietSim(), 2)
	cases := []struct {
		body, want, seed string
	}{
		{`{"seeds": ["OL9388A", "https://evil.example/works/OL1W.json"]}`, "outside the crawl target", "https://evil.example/works/OL1W.json"},
		{`{"seeds": ["/etc/passwd"]}`, "not an Open Library", "/etc/passwd"},
		{`{"seeds": []}`, "give 1 to", ""},
		{`{"seeds": ["OL1A"], "max_depth": 99}`, "max_depth 99", ""},
		{`{"seeds": ["OL1A"], "name": "a b"}`, "name", ""},
		{`{"seeds": ["OL1A"], "depth": 2}`, "unknown field", ""},
		{`not json`, "request body", ""},
		{`{"seeds": ["OL1A", "a\u0001b"]}`, "not text", "a\x01b"},
		{`{"seeds": ["` + strings.Repeat("x", 501) + `"]}`, "over the 500-byte limit", strings.Repeat("x", 40) + "…"},
	}
	for _, c := range cases {
		resp, err := http.Post(s.apiURL+"/api/v1/runs", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Code    int
				Message string
				Seed    string
			}
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Error.Code != 400 || !strings.Contains(e.Error.Message, c.want) || e.Error.Seed != c.seed {
			t.Errorf("%s: %d %+v", c.body, resp.StatusCode, e.Error)
		}
	}
	runs, err := s.runs.List(context.Background(), 10)
	if err != nil || len(runs) != 0 {
		t.Errorf("rejected requests created runs: %v %v", runs, err)
	}
	resp, err := http.Get(s.apiURL + "/api/v1/runs/nope")
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown run: %v %v", resp.Status, err)
	}
}

// TestMetricsPassPromlint lints every runtime's metrics, gathered from a
// stack that has crawled a little.
func TestMetricsPassPromlint(t *testing.T) {
	s := startStack(t, quietSim(), 2)
	workerReg := prometheus.NewRegistry()
	defer s.startWorker(worker.Options{Registerer: workerReg})()
	run := s.seed(api.RunRequest{Seeds: []string{"OL9388A"}, MaxDepth: ptr(1)})
	s.waitDrained(run.ID, 2*time.Minute)

	simReg := prometheus.NewRegistry()
	sim, err := olsim.New(olsim.DefaultOptions(), simReg)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 { // the json burst is 5: some 200s, then 429s
		sim.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/works/OL17732W.json", nil))
	}
	gwReg := prometheus.NewRegistry()
	if _, err := graphwriter.New(graphwriter.Options{Brokers: s.brokers, Store: s.graph, Registerer: gwReg}); err != nil {
		t.Fatal(err)
	}
	apiReg := prometheus.NewRegistry()
	a, err := api.New(api.Options{Brokers: s.brokers, Target: s.target, Runs: s.runs, Registry: apiReg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for name, reg := range map[string]*prometheus.Registry{"worker": workerReg, "olsim": simReg, "graph-writer": gwReg, "api": apiReg} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(mfs) == 0 {
			t.Errorf("%s exposes no metrics", name)
		}
		problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
	// The API exports lag per partition and the run's counters.
	mfs, _ := apiReg.Gather()
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"crawl_api_consumer_lag_records", "crawl_api_run_urls", "crawl_api_run_drained"} {
		if !names[n] {
			t.Errorf("api lacks %s", n)
		}
	}
}

// refuseFirst refuses each URL's first fetch as the egress pool does when
// the pacing slot is too far out (stands in for a saturated egress).
type refuseFirst struct {
	inner   worker.Fetcher
	mu      sync.Mutex
	refused map[string]bool
}

func (f *refuseFirst) Fetch(req *http.Request, timeout time.Duration) (*http.Response, string, error) {
	f.mu.Lock()
	first := !f.refused[req.URL.String()]
	f.refused[req.URL.String()] = true
	f.mu.Unlock()
	if first {
		return nil, egress.None, fmt.Errorf("%w (test)", egress.ErrWaitTooLong)
	}
	return f.inner.Fetch(req, timeout)
}

// TestNoPacingSlotSpendsNoAttempt: a job refused for want of a pacing slot
// is handed back without spending an attempt, so even with one attempt
// allowed every URL is crawled and none goes to the DLQ.
func TestNoPacingSlotSpendsNoAttempt(t *testing.T) {
	s := startStack(t, quietSim(), 2)
	f := &refuseFirst{inner: worker.NewDirect(), refused: map[string]bool{}}
	defer s.startWorker(worker.Options{Fetcher: f, MaxAttempts: 1, BackoffBase: 50 * time.Millisecond})()
	run := s.seed(api.RunRequest{Name: "no-slot", Seeds: []string{"OL17732W", "OL9388A"}, MaxDepth: ptr(1)})
	r := s.waitDrained(run.ID, 3*time.Minute)
	s.checkRun(r)
	if r.Counters.DLQ != 0 || r.Counters.Crawled == 0 {
		t.Errorf("counters %+v, DLQ %v: a refused slot must not spend the only attempt", r.Counters, r.DLQByReason)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if int64(len(f.refused)) < r.Counters.Crawled {
		t.Errorf("%d URLs refused once, %d crawled: every crawled URL was refused first", len(f.refused), r.Counters.Crawled)
	}
}
