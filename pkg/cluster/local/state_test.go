package local_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// stateHome is the XDG_STATE_HOME of c (newStack gives each its own).
func (c crawlctl) stateHome() string {
	for _, e := range c.env {
		if v, ok := strings.CutPrefix(e, "XDG_STATE_HOME="); ok {
			return v
		}
	}
	c.t.Fatal("no XDG_STATE_HOME")
	return ""
}

func (c crawlctl) with(env ...string) crawlctl {
	return crawlctl{t: c.t, bin: c.bin, env: append(append([]string(nil), c.env...), env...)}
}

// TestPurgeStaysInsideTheStack: a bad stack name is refused before any
// file is touched, so --purge can delete only the stack's own directory.
func TestPurgeStaysInsideTheStack(t *testing.T) {
	c := newStack(t, "safe")
	home := c.stateHome()
	keep := []string{filepath.Join(home, "other-app", "keep"), filepath.Join(home, "crawlctl", "other", "graph.db")}
	for _, f := range keep {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte("x"), 0o644)
	}
	for _, tc := range []struct {
		name string
		run  crawlctl
		args []string
	}{
		{"env ..", c.with("CRAWLCTL_NAME=.."), []string{"down", "--purge"}},
		{"env .", c.with("CRAWLCTL_NAME=."), []string{"down", "--purge"}},
		{"flag empty", c, []string{"--name", "", "down", "--purge"}},
		{"flag path", c, []string{"--name", "../other-app", "down", "--purge"}},
		{"flag absolute", c, []string{"--name", "/tmp", "down", "--purge"}},
		{"status", c, []string{"--name", "..", "status"}},
		{"up", c, []string{"--name", "UPPER", "up", "--provider", "local"}},
		{"seed's old --name", c, []string{"seed", "--name", "my_run", "--count", "1"}},
		{"collect's old --name", c, []string{"collect", "--name", "3_proxies_paced"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := tc.run.run(tc.args...)
			if code != 2 || !strings.Contains(errOut, "is not valid") {
				t.Errorf("exit %d, want 2 and the name refused:\n%s", code, errOut)
			}
			switch tc.args[0] {
			case "seed":
				if !strings.Contains(errOut, "--run-name") {
					t.Errorf("the refusal does not name --run-name: %s", errOut)
				}
			case "collect":
				if !strings.Contains(errOut, "--folder") {
					t.Errorf("the refusal does not name --folder: %s", errOut)
				}
			}
			for _, f := range keep {
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("%s is gone: %v", f, err)
				}
			}
		})
	}
	// A valid name purges only its own directory.
	own := filepath.Join(home, "crawlctl", "safe", "graph.db")
	os.MkdirAll(filepath.Dir(own), 0o755)
	os.WriteFile(own, []byte("x"), 0o644)
	if _, errOut, code := c.run("down", "--purge"); code != 0 {
		t.Fatalf("down --purge: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the stack's own state is still there: %v", err)
	}
	for _, f := range keep {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s is gone: %v", f, err)
		}
	}
}

// TestStaleStateIsNeverSignalled: the state a crashed supervisor left,
// whose pid now belongs to another process, is reported as a dead stack;
// down removes it and signals nobody.
func TestStaleStateIsNeverSignalled(t *testing.T) {
	c := newStack(t, "stale")
	dir := filepath.Join(c.stateHome(), "crawlctl", "stale")
	os.MkdirAll(dir, 0o755)
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	pid := other.Process.Pid
	start, err := proc.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Even the pid file naming that process exactly is not trusted: no
	// supervisor holds its lock.
	os.WriteFile(filepath.Join(dir, "supervisor.pid"), fmt.Appendf(nil, "%d %d\n", pid, start), 0o644)
	st, _ := json.Marshal(local.State{PID: pid, StartedAt: time.Now().Add(-time.Hour), Admin: "http://127.0.0.1:1"})
	os.WriteFile(filepath.Join(dir, "state.json"), st, 0o644)

	for _, args := range [][]string{{"status"}, {"seed", "--count", "1"}} {
		_, errOut, code := c.run(args...)
		if code == 0 || !strings.Contains(errOut, "died") || !strings.Contains(errOut, "lost") {
			t.Errorf("%v on a dead stack: exit %d: %s", args, code, errOut)
		}
	}
	_, errOut, code := c.run("down")
	if code != 0 || !strings.Contains(errOut, "was not up") {
		t.Errorf("down on a dead stack: exit %d: %s", code, errOut)
	}
	if !proc.Alive(pid) {
		t.Fatalf("down signalled pid %d, which is not the stack's", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("the stale state.json is still there: %v", err)
	}
}

// TestDamagedState: a truncated state.json is reported with its path and
// what to do; down (no supervisor holds the stack) removes it and says so,
// and down --purge cleans the whole directory.
func TestDamagedState(t *testing.T) {
	c := newStack(t, "damaged")
	dir := filepath.Join(c.stateHome(), "crawlctl", "damaged")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"spec": {"name": "dam`), 0o644)
	for _, args := range [][]string{{"status"}, {"seed", "--count", "1"}} {
		_, errOut, code := c.run(args...)
		if code == 0 || !strings.Contains(errOut, filepath.Join(dir, "state.json")) || !strings.Contains(errOut, "down --purge") {
			t.Errorf("%v with a damaged state: exit %d: %s", args, code, errOut)
		}
	}
	if _, errOut, code := c.run("down"); code != 0 || !strings.Contains(errOut, "unreadable state") || !strings.Contains(errOut, filepath.Join(dir, "state.json")) {
		t.Errorf("down with a damaged state: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("down left the damaged state.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"spec": {"name": "dam`), 0o644)
	if _, errOut, code := c.run("down", "--purge"); code != 0 {
		t.Fatalf("down --purge: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
}

// TestUpFlagsCheckedFirst: every bad up or collect flag is refused with
// exit 2, naming the flag, before anything is created.
func TestUpFlagsCheckedFirst(t *testing.T) {
	c := newStack(t, "flags")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"up", "--provider", "local", "--target", "file:///etc/passwd"}, "--target"},
		{[]string{"up", "--provider", "local", "--proxy-assignment", "bogus"}, "--proxy-assignment"},
		{[]string{"up", "--provider", "local", "--sim-time-factor", "-5"}, "--sim-time-factor"},
		{[]string{"up", "--provider", "local", "--sim-time-factor", "0"}, "--sim-time-factor"},
		{[]string{"up", "--provider", "local", "--scrape-interval", "0s"}, "--scrape-interval"},
		{[]string{"up", "--provider", "local", "--timeout", "0s"}, "--timeout"},
		{[]string{"collect", "--step", "0s"}, "--step"},
		{[]string{"collect", "--rate-window", "-1s"}, "--rate-window"},
	} {
		_, errOut, code := c.run(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.flag) {
			t.Errorf("%v: exit %d, want 2 naming %s:\n%s", tc.args, code, tc.flag, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(c.stateHome(), "crawlctl", "flags")); !os.IsNotExist(err) {
		t.Errorf("a refused up created the state dir: %v", err)
	}
}

// TestConcurrentUpsAndCrash: two ups at once start one stack (the second
// waits, then finds it up); after the supervisor is killed, status says
// the stack died and its run is lost, collect still snapshots a run from
// the metrics on disk, and down --purge cleans up.
func TestConcurrentUpsAndCrash(t *testing.T) {
	c := newStack(t, "race")
	args := []string{"up", "--provider", "local", "--sim-time-factor", "50", "--scrape-interval", "1s"}
	var wg sync.WaitGroup
	codes, errs := make([]int, 2), make([]string, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i], codes[i] = c.run(args...) })
	}
	wg.Wait()
	for i := range 2 {
		if codes[i] != 0 {
			t.Errorf("up %d: exit %d: %s", i, codes[i], errs[i])
		}
	}
	if !strings.Contains(errs[0]+errs[1], "already up") {
		t.Errorf("neither up found the other's stack:\n%s\n%s", errs[0], errs[1])
	}
	var supervisors []string
	for _, p := range processesOf(c.bin) {
		if strings.Contains(p, " run supervisor ") {
			supervisors = append(supervisors, p)
		}
	}
	if len(supervisors) != 1 {
		t.Fatalf("%d supervisors run, want 1: %v", len(supervisors), supervisors)
	}
	st := c.status()
	if st.PID == 0 {
		t.Fatalf("status %+v", st)
	}
	c.must("seed", "--count", "2", "--max-depth", "1")
	live := readRunJSON(t, strings.TrimSpace(c.must("collect", "--until-drained", "--out", t.TempDir(), "-q")))

	syscall.Kill(st.PID, syscall.SIGKILL)
	testenv.Eventually(t, time.Minute, "the children to go with the supervisor", func() bool { return len(processesOf(c.bin)) == 0 })
	_, errOut, code := c.run("status")
	if code == 0 || !strings.Contains(errOut, "died") || !strings.Contains(errOut, "run it was crawling is lost") {
		t.Errorf("status after the supervisor died: exit %d: %s", code, errOut)
	}

	// collect still snapshots the run from the metrics on disk, with the
	// counters the API reported, and leaves them as they were.
	tsdb := filepath.Join(c.stateHome(), "crawlctl", "race", "tsdb")
	before := testenv.DirSizes(t, tsdb)
	out, errOut, code := c.run("collect", "--out", t.TempDir())
	if code != 0 || !strings.Contains(errOut, "from the metrics it left on disk") {
		t.Fatalf("collect after the crash: exit %d: %s", code, errOut)
	}
	got := readRunJSON(t, strings.TrimSpace(out))
	if got.Run.ID != live.Run.ID || got.Run.Counters != live.Run.Counters || got.Run.State != "drained" || len(got.Run.Seeds) != 2 {
		t.Errorf("collected after the crash: %+v\nwhile up: %+v", got.Run, live.Run)
	}
	if d := got.Run.DrainedAt.Sub(live.Run.DrainedAt); d < 0 || d > 2*time.Second {
		t.Errorf("drained at %v after the crash, %v while up: want within a scrape interval (1s) after", got.Run.DrainedAt, live.Run.DrainedAt)
	}
	if !strings.Contains(got.Source, "on disk") {
		t.Errorf("run.json source %q should say the counters came from the metrics on disk", got.Source)
	}
	if after := testenv.DirSizes(t, tsdb); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("collect changed the stack's metrics store:\nbefore %v\nafter  %v", before, after)
	}
	if _, errOut, code := c.run("collect", "--run", "r20200101-000000-000000"); code == 0 || !strings.Contains(errOut, "was not recorded") {
		t.Errorf("collect of an unknown run after the crash: exit %d: %s", code, errOut)
	}
	if _, errOut, code := c.run("down", "--purge"); code != 0 {
		t.Errorf("down --purge after a crash: exit %d: %s", code, errOut)
	}
}

// TestNameFlagSelectsTheStack: the global --name is the stack on every
// command, seed and collect included (their run and folder names have
// their own flags).
func TestNameFlagSelectsTheStack(t *testing.T) {
	c := newStack(t, "crawl") // CRAWLCTL_NAME=crawl; --name wins over it
	t.Cleanup(func() { c.run("--name", "lab", "down", "--purge") })
	c.must("up", "--name", "lab", "--provider", "local", "--proxies", "1", "--sim-time-factor", "20", "--scrape-interval", "200ms")
	if _, errOut, code := c.run("status"); code == 0 || !strings.Contains(errOut, `stack "crawl" is not up`) {
		t.Fatalf("status of the default stack: exit %d, %s; want it not up", code, errOut)
	}
	c.must("seed", "--name", "lab", "--count", "1", "--max-depth", "1", "--run-name", "poets")
	var st local.Status
	if err := json.Unmarshal([]byte(c.must("status", "--name", "lab", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Name != "lab" || st.Run == nil || st.Run.Name != "poets" {
		t.Fatalf("status --name lab: stack %q, run %+v; want lab running poets", st.Name, st.Run)
	}
	out := t.TempDir()
	dir := strings.TrimSpace(c.must("collect", "--name", "lab", "--until-drained", "--out", out, "--folder", "mine", "--step", "1s"))
	if want := filepath.Join(out, "worker_autoscaler_egress_proxy", "mine"); dir != want {
		t.Errorf("collect wrote %s, want %s", dir, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "run.json")); err != nil {
		t.Error(err)
	}
	if _, errOut, code := c.run("down", "--name", "lab"); code != 0 || !strings.Contains(errOut, `stack "lab" is down`) {
		t.Errorf("down --name lab: exit %d, %s", code, errOut)
	}
}

// runJSON is the part of collect's run.json these tests read.
type runJSON struct {
	Run    runstate.Run `json:"run"`
	Source string       `json:"source"`
}

func readRunJSON(t *testing.T, dir string) runJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r runJSON
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
