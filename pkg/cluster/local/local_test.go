package local_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/color"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/timeline"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// crawlctl runs the real binary with its own state and config dirs.
type crawlctl struct {
	t   *testing.T
	bin string
	env []string
}

func (c crawlctl) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (c crawlctl) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("crawlctl %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (c crawlctl) status() *local.Status {
	c.t.Helper()
	var st local.Status
	if err := json.Unmarshal([]byte(c.must("status", "-o", "json")), &st); err != nil {
		c.t.Fatal(err)
	}
	return &st
}

// newStack is the real binary with its own state and config dirs, for a
// stack called name; at the end it is taken down, and no crawlctl process
// may be left.
func newStack(t *testing.T, name string) crawlctl {
	bin := testenv.Crawlctl(t)
	home := t.TempDir()
	c := crawlctl{t: t, bin: bin, env: []string{"XDG_STATE_HOME=" + home, "XDG_CONFIG_HOME=" + home, "CRAWLCTL_NAME=" + name}}
	t.Cleanup(func() {
		c.run("down", "--purge")
		for _, p := range processesOf(bin) {
			t.Errorf("left behind: %s", p)
		}
	})
	return c
}

// processesOf lists live processes started from bin.
func processesOf(bin string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasPrefix(string(b), bin+"\x00") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err != nil || !proc.Alive(pid) {
			continue
		}
		out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// TestUpSeedStatusDown is the main job end to end with a small, fast
// configuration: every component ready, a run drains with exact
// accounting and every edge stored although a worker, a proxy and the
// graph writer are killed mid-run, collect writes its folder, and down
// leaves no process.
func TestUpSeedStatusDown(t *testing.T) {
	c := newStack(t, "e2e")
	bin := c.bin
	if _, errOut, code := c.run("status"); code == 0 || !strings.Contains(errOut, `stack "e2e" is not up`) {
		t.Errorf("status before up: exit %d: %s", code, errOut)
	}
	// Time factor 5: 2 proxies × 15/s, so the run lasts about 10 s, long
	// enough for the change of proxies below to land in the middle of it.
	upArgs := []string{"up", "--provider", "local", "--partitions", "4", "--proxies", "2", "--sim-time-factor", "5", "--scrape-interval", "1s"}
	start := time.Now()
	var state local.State
	if err := json.Unmarshal([]byte(c.must(append(upArgs, "-o", "json")...)), &state); err != nil {
		t.Fatal(err)
	}
	t.Logf("up in %v", time.Since(start))
	if state.Endpoints.API == "" || state.Endpoints.Simulator == "" || state.PID == 0 {
		t.Fatalf("state %+v", state)
	}
	// Every component ready.
	st := c.status()
	want := map[string]int{"proxy": 2, "graph-writer": 1, "worker": 1}
	for comp, n := range want {
		if r := st.Replicas[comp]; r.Ready != n {
			t.Errorf("%s: %d ready, want %d (%+v)", comp, r.Ready, n, st.Replicas)
		}
	}
	// up again with the same settings: already up; with others: refused.
	if _, errOut, code := c.run(upArgs...); code != 0 || !strings.Contains(errOut, "already up") {
		t.Errorf("second up: exit %d: %s", code, errOut)
	}
	// Without --provider, up keeps the stack's provider; a cluster provider
	// is refused while it runs here.
	if _, errOut, code := c.run(slices.Delete(slices.Clone(upArgs), 1, 3)...); code != 0 || !strings.Contains(errOut, `provider local: stack "e2e" is up on it`) || !strings.Contains(errOut, "already up") {
		t.Errorf("up without --provider: exit %d: %s", code, errOut)
	}
	if _, errOut, code := c.run("up", "--provider", "kind"); code != 2 || !strings.Contains(errOut, "run `crawlctl down` first") {
		t.Errorf("up --provider kind while up locally: exit %d: %s", code, errOut)
	}
	if _, errOut, code := c.run(append(upArgs[:len(upArgs):len(upArgs)], "--sim-time-factor", "7")...); code == 0 || !strings.Contains(errOut, "--sim-time-factor cannot change while it is") {
		t.Errorf("up with another time factor: exit %d: %s", code, errOut)
	}
	// A bad seed enqueues nothing.
	if _, errOut, code := c.run("seed", "--file", writeFile(t, "OL9388A\nhttps://evil.example/x\n")); code != 2 || !strings.Contains(errOut, "outside the crawl target") {
		t.Errorf("bad seed: exit %d: %s", code, errOut)
	}

	var run runstate.Run
	if err := json.Unmarshal([]byte(c.must("seed", "--count", "6", "--max-depth", "2", "-o", "json")), &run); err != nil {
		t.Fatal(err)
	}
	// Kill a worker mid-run.
	testenv.Eventually(t, 60*time.Second, "the run to be under way", func() bool {
		r := c.status().Run
		return r != nil && r.ID == run.ID && r.Counters.Crawled > 20
	})
	// New settings mid-run: a third proxy; workers roll onto it.
	if _, errOut, code := c.run(append(upArgs[:len(upArgs):len(upArgs)], "--proxies", "3")...); code != 0 || !strings.Contains(errOut, "applied") {
		t.Fatalf("up --proxies 3 while up: exit %d: %s", code, errOut)
	}
	if r := c.status().Replicas["proxy"]; r.Ready != 3 {
		t.Errorf("after up --proxies 3: %+v", r)
	}
	// Kill one of each kind of child mid-run.
	killed := map[string]bool{}
	for _, comp := range c.status().Components {
		if !killed[comp.Name] {
			syscall.Kill(comp.PID, syscall.SIGKILL)
			killed[comp.Name] = true
		}
	}
	if len(killed) != 3 {
		t.Fatalf("killed %v, want a worker, a proxy and a graph writer", killed)
	}
	var final *local.Status
	testenv.Eventually(t, 3*time.Minute, "the run to drain", func() bool {
		final = c.status()
		return final.Run != nil && final.Run.ID == run.ID && final.Run.State == runstate.StateDrained
	})
	k := final.Run.Counters
	if k.Enqueued == 0 || k.Enqueued != k.Crawled+k.Deduped+k.DLQ {
		t.Errorf("accounting: %+v", k)
	}
	// No edge lost: the graph writer commits a batch only once the store
	// has it, so once its group has committed every results and edges
	// record, every edge produced is stored.
	testenv.Eventually(t, time.Minute, "the graph writer to commit every record", func() bool {
		var lag struct {
			Groups map[string][]topics.PartitionLag `json:"groups"`
		}
		resp, err := http.Get(state.Endpoints.API + "/api/v1/lag")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&lag) != nil || len(lag.Groups[topics.GraphWriterGroup]) == 0 {
			return false
		}
		for _, l := range lag.Groups[topics.GraphWriterGroup] {
			if l.Lag != 0 || (l.End > 0 && l.Committed != l.End) {
				return false
			}
		}
		return true
	})
	final = c.status()
	if final.Run.Counters.EdgesWritten == 0 {
		t.Error("no edge stored")
	}
	restarts := map[string]int{}
	for _, comp := range final.Components {
		restarts[comp.Name] += comp.Restarts
	}
	for name := range killed {
		if restarts[name] == 0 {
			t.Errorf("the killed %s was not restarted: %v", name, restarts)
		}
	}
	t.Logf("run %s drained: %+v", run.ID, k)
	checkCollect(t, c, run.ID)

	c.must("down")
	if left := processesOf(bin); len(left) > 0 {
		t.Errorf("down left processes: %v", left)
	}
	if _, errOut, code := c.run("down"); code != 0 || !strings.Contains(errOut, "was not up") {
		t.Errorf("second down: exit %d: %s", code, errOut)
	}
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "seeds.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkCollect snapshots the run and checks the folder: CSV columns, a
// picture with content, and a summary that agrees with the CSVs.
func checkCollect(t *testing.T, c crawlctl, runID string) {
	out := t.TempDir()
	dir := strings.TrimSpace(c.must("collect", "--until-drained", "--run", runID, "--out", out, "--step", "1s", "--rate-window", "5s", "-q"))
	if want := filepath.Join(out, "worker_autoscaler_egress_proxy", "6_seed_3_proxies"); dir != want {
		t.Errorf("collect wrote %s, want %s", dir, want)
	}
	csvs := map[string][][]string{}
	for _, name := range []string{"frontier_lag", "replicas", "rate_limited", "throughput", "edges", "fetch_latency", "errors"} {
		f, err := os.Open(filepath.Join(dir, "csv_data", name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(rows) < 5 || rows[0][0] != "time" {
			t.Fatalf("%s.csv: %d rows, %v", name, len(rows), err)
		}
		csvs[name] = rows
	}
	if head := csvs["frontier_lag"][0]; len(head) != 5 { // time + 4 partitions
		t.Errorf("frontier_lag.csv columns %v, want time and 4 partitions", head)
	}
	// The summary's numbers are the CSVs' numbers.
	var meta struct {
		Settings timeline.Entry   `json:"settings"`
		Timeline []timeline.Entry `json:"timeline"`
		Summary  struct {
			PeakLag         float64 `json:"peak_lag"`
			PeakEdgesPerSec float64 `json:"peak_edges_per_second"`
			PeakWorkers     float64 `json:"peak_workers"`
		} `json:"summary"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil || json.Unmarshal(b, &meta) != nil {
		t.Fatalf("run.json: %v", err)
	}
	// The run started with 2 proxies and drained with 3: the folder is named
	// after the settings at drain, and the timeline says when they changed.
	if meta.Settings.Proxies != 3 {
		t.Errorf("run.json settings: %d proxies, want 3", meta.Settings.Proxies)
	}
	if tl := meta.Timeline; len(tl) != 2 || tl[0].Proxies != 2 || tl[1].Proxies != 3 || !tl[1].At.After(tl[0].At) {
		t.Errorf("run.json timeline %+v, want 2 proxies then 3", tl)
	}
	if got := maxRowSum(csvs["frontier_lag"], -1); got != meta.Summary.PeakLag || got == 0 {
		t.Errorf("peak lag: CSV %v, summary %v", got, meta.Summary.PeakLag)
	}
	if got := maxRowSum(csvs["edges"], -1); got != meta.Summary.PeakEdgesPerSec || got == 0 {
		t.Errorf("peak edges/s: CSV %v, summary %v", got, meta.Summary.PeakEdgesPerSec)
	}
	col := slices.Index(csvs["replicas"][0], "worker")
	if got := maxRowSum(csvs["replicas"], col); got != meta.Summary.PeakWorkers || got < 1 {
		t.Errorf("peak workers: CSV %v, summary %v", got, meta.Summary.PeakWorkers)
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil || !strings.Contains(string(md), "Time to drain") || !strings.Contains(string(md), "proxies 2→3") {
		t.Errorf("summary.md: %v\n%s", err, md)
	}
	// The picture decodes and is not blank.
	img := testenv.DecodePNG(t, filepath.Join(dir, "screenshots", "overview.png"))
	colors := map[color.Color]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			colors[img.At(x, y)] = true
		}
	}
	if bounds.Dx() < 800 || len(colors) < 20 {
		t.Errorf("overview.png is %v with %d colours: not a chart", bounds, len(colors))
	}
}

// maxRowSum is the largest per-row sum of the CSV's value columns (col < 0)
// or the largest value of one column.
func maxRowSum(rows [][]string, col int) float64 {
	best := 0.0
	for _, r := range rows[1:] {
		sum := 0.0
		for i, v := range r[1:] {
			if col >= 0 && i+1 != col {
				continue
			}
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
		best = max(best, sum)
	}
	return best
}

// gridTimeout is up's --timeout with browser workers: Chromium starts
// slowly on a busy machine (the kind tests run beside these).
const gridTimeout = "5m"

func TestGridWorkers(t *testing.T) {
	pw := testenv.Playwright(t)
	c := newStack(t, "grid")
	bin := c.bin
	// Without Node.js and Chromium on PATH, up says what to install and
	// starts nothing.
	bare := crawlctl{t: t, bin: bin, env: append(slices.Clone(c.env), "PATH="+t.TempDir())}
	_, errOut, code := bare.run("up", "--provider", "local", "--grid-workers", "1")
	for _, want := range []string{"--grid-workers 1 needs a Playwright browser server", "Node.js is not installed", "apt-get install chromium"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("up without node and chromium: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if _, _, code := c.run("status"); code == 0 {
		t.Fatal("a refused up left a stack up")
	}

	// The grid listens where --grid-listen says (not on its default
	// 127.0.0.1:8080, which the kind tests map to their clusters at the
	// same time; TestGridListen covers the default), and keeps it.
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	_, errOut, code = c.run("up", "--provider", "local", "--grid-workers", "1", "--sim-time-factor", "50", "--grid-listen", listen, "--timeout", gridTimeout)
	if code != 0 {
		t.Fatalf("up --grid-workers 1: exit %d\n%s", code, errOut)
	}
	st := c.status()
	endpoint := "ws://" + listen + "/"
	if len(st.Grid) != 1 || st.Endpoints.Grid != endpoint {
		t.Fatalf("status after up --grid-workers 1: grid %s (want %s), workers %+v\n%s", st.Endpoints.Grid, endpoint, st.Grid, errOut)
	}

	// A live session outlives scaling up to two workers, then down to one.
	holder := startHolder(t, pw, endpoint)
	c.must("up", "--provider", "local", "--grid-workers", "2", "--sim-time-factor", "50", "--timeout", gridTimeout)
	if st := c.status(); len(st.Grid) != 2 || st.Endpoints.Grid != endpoint {
		t.Fatalf("status after up --grid-workers 2: grid %s (want %s), workers %+v", st.Endpoints.Grid, endpoint, st.Grid)
	}
	plan, _ := json.Marshal(map[string]any{"ws": endpoint, "sessions": 3, "concurrency": 3})
	cmd := exec.Command("node", "../../runtime/grid/testdata/client.cjs", string(plan))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(pw, "node_modules"))
	out, err := cmd.Output()
	if err != nil || strings.Count(string(out), `"ok":true`) != 3 {
		t.Fatalf("three sessions through the local grid: %v\n%s", err, out)
	}
	served := 0
	for _, w := range c.status().Grid {
		served += w.Lifetime
	}
	if served != 4 {
		t.Errorf("grid workers count %d sessions, want 4 (the live one and three)", served)
	}
	if text := c.must("status"); !strings.Contains(text, "GRID WORKER") || !strings.Contains(text, "browser-1") {
		t.Errorf("status text lacks the grid workers:\n%s", text)
	}
	c.must("up", "--provider", "local", "--grid-workers", "1", "--sim-time-factor", "50", "--timeout", gridTimeout)
	if st := c.status(); len(st.Grid) != 1 || st.Endpoints.Grid != endpoint {
		t.Fatalf("status after up --grid-workers 1 again: grid %s, workers %+v", st.Endpoints.Grid, st.Grid)
	}
	if res := holder.finish(); !strings.Contains(res, `"ok":true`) || !strings.Contains(res, "still here") {
		t.Errorf("the session opened before scaling did not survive it: %s", res)
	}
	c.must("up", "--provider", "local", "--grid-workers", "0", "--sim-time-factor", "50", "--timeout", gridTimeout)
	if st := c.status(); len(st.Grid) != 0 || st.Endpoints.Grid != "" {
		t.Errorf("status after up --grid-workers 0: grid %q, workers %+v", st.Endpoints.Grid, st.Grid)
	}
}

// holder is a Playwright session held open until finish.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startHolder connects one session to the grid at ws and returns once it
// is connected, with a page open.
func startHolder(t *testing.T, pw, ws string) *holder {
	t.Helper()
	plan, _ := json.Marshal(map[string]any{"ws": ws, "sessions": 1, "holdStdin": true})
	cmd := exec.Command("node", "../../runtime/grid/testdata/client.cjs", string(plan))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(pw, "node_modules"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	h := &holder{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	if !h.lines.Scan() || !strings.Contains(h.lines.Text(), `"connected":true`) {
		t.Fatalf("the held session did not connect: %q", h.lines.Text())
	}
	return h
}

// finish lets the held session use its page again and close; it returns
// the session's result line.
func (h *holder) finish() string {
	h.stdin.Close()
	var last string
	for h.lines.Scan() {
		last = h.lines.Text()
	}
	h.cmd.Wait()
	return last
}
