package local_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/runstate"
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

// processesOf lists live processes started from bin.
func processesOf(bin string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasPrefix(string(b), bin+"\x00") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(d, "stat")); err == nil {
			f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
			if len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// TestUpSeedStatusDown is the main job end to end with a small, fast
// configuration: every component ready, a run drains with exact
// accounting although a worker is killed, and down leaves no process.
func TestUpSeedStatusDown(t *testing.T) {
	bin := testenv.Crawlctl(t)
	home := t.TempDir()
	c := crawlctl{t: t, bin: bin, env: []string{"XDG_STATE_HOME=" + home, "XDG_CONFIG_HOME=" + home, "CRAWLCTL_NAME=e2e"}}
	t.Cleanup(func() {
		c.run("down", "--purge")
		for _, p := range processesOf(bin) {
			t.Errorf("left behind: %s", p)
		}
	})
	if _, errOut, code := c.run("status"); code == 0 || !strings.Contains(errOut, `stack "e2e" is not up`) {
		t.Errorf("status before up: exit %d: %s", code, errOut)
	}
	upArgs := []string{"up", "--provider", "local", "--partitions", "4", "--proxies", "2", "--sim-time-factor", "50"}
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
	if _, errOut, code := c.run("up", "--provider", "local", "--proxies", "3"); code == 0 || !strings.Contains(errOut, "is up with other settings") {
		t.Errorf("up with other settings: exit %d: %s", code, errOut)
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
	for _, comp := range c.status().Components {
		if comp.Name == "worker" {
			syscall.Kill(comp.PID, syscall.SIGKILL)
			break
		}
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
	restarts := 0
	for _, comp := range final.Components {
		if comp.Name == "worker" {
			restarts += comp.Restarts
		}
	}
	if restarts == 0 {
		t.Error("the killed worker was not restarted")
	}
	t.Logf("run %s drained: %+v", run.ID, k)

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
