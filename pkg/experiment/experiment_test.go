package experiment_test

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
	"github.com/crawlctl/crawlctl/pkg/experiment"
)

// crawlctl is the real binary with its own state and config dirs.
type crawlctl struct {
	t   *testing.T
	bin string
	env []string
}

func newCrawlctl(t *testing.T) crawlctl {
	home := t.TempDir()
	return crawlctl{t: t, bin: testenv.Crawlctl(t), env: []string{"XDG_STATE_HOME=" + home, "XDG_CONFIG_HOME=" + home}}
}

func (c crawlctl) command(args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

func (c crawlctl) must(args ...string) (string, string) {
	c.t.Helper()
	cmd, out, errb := c.command(args...)
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("crawlctl %s: %v\n%s", strings.Join(args, " "), err, errb)
	}
	return out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "experiment.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// small is a quick experiment: two seeds one link deep at twenty times the
// simulator's speed.
const small = `seeds: 2
maxDepth: 1
simTimeFactor: 20
scrapeInterval: 500ms
`

// TestRunTwoScenariosTwice runs a two-scenario, two-repeat file end to end
// and checks the folders, the report's rows against the runs' own
// summaries, and the picture; running it again skips every run.
func TestRunTwoScenariosTwice(t *testing.T) {
	c := newCrawlctl(t)
	out := t.TempDir()
	file := writeFile(t, "name: pair\n"+small+"repeats: 2\nscenarios:\n  - {name: one_egress, proxies: 1}\n  - {name: two_egress, proxies: 2}\n")
	stdout, stderr := c.must("experiment", "run", file, "--out", out)
	dir := filepath.Join(out, "pair")
	if strings.TrimSpace(stdout) != filepath.Join(dir, "report.md") {
		t.Errorf("stdout %q, want the report's path", stdout)
	}
	if n := strings.Count(stderr, "✓ ["); n != 4 || !strings.Contains(stderr, "[4/4] two_egress #2") {
		t.Errorf("progress: %d run lines, want 4:\n%s", n, stderr)
	}
	var rep experiment.Report
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || strings.Join(rep.Differs, ",") != "proxies" {
		t.Fatalf("report: %d rows, differing settings %v; want 2 rows differing in proxies", len(rep.Rows), rep.Differs)
	}
	for _, row := range rep.Rows {
		var drains []float64
		for repeat := 1; repeat <= 2; repeat++ {
			run := filepath.Join(dir, row.Scenario, []string{"", "1", "2"}[repeat])
			for _, f := range []string{"summary.md", "run.json", "csv_data/frontier_lag.csv", "screenshots/overview.png"} {
				if _, err := os.Stat(filepath.Join(run, f)); err != nil {
					t.Errorf("run %s lacks %s", run, f)
				}
			}
			var meta struct {
				Summary struct {
					Drain float64 `json:"drain_seconds"`
				} `json:"summary"`
			}
			b, err := os.ReadFile(filepath.Join(run, "run.json"))
			if err == nil {
				err = json.Unmarshal(b, &meta)
			}
			if err != nil {
				t.Fatal(err)
			}
			drains = append(drains, meta.Summary.Drain)
		}
		lo, hi := min(drains[0], drains[1]), max(drains[0], drains[1])
		if row.Drain.Min != lo || row.Drain.Max != hi || row.Drain.Median != (lo+hi)/2 {
			t.Errorf("%s: report drain %+v, the runs' summaries say %v", row.Scenario, row.Drain, drains)
		}
		if row.Settings["proxies"] != map[string]string{"one_egress": "1", "two_egress": "2"}[row.Scenario] {
			t.Errorf("%s: settings %v", row.Scenario, row.Settings)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"| one_egress |", "| two_egress |", "comparison.png", "drain / limit"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	checkPicture(t, filepath.Join(dir, "comparison.png"))

	_, stderr = c.must("experiment", "run", file, "--out", out)
	if n := strings.Count(stderr, "complete already, skipped"); n != 4 {
		t.Errorf("the second run skipped %d of 4 runs:\n%s", n, stderr)
	}
	list, _ := c.must("experiment", "list", "--out", out, "-o", "json")
	var es []experiment.Entry
	if err := json.Unmarshal([]byte(list), &es); err != nil || len(es) != 1 || es[0].State != "complete" || es[0].Complete != 4 {
		t.Errorf("list: %s (%v)", list, err)
	}
}

// checkPicture: the PNG decodes, has both charts' size and is drawn on.
func checkPicture(t *testing.T, path string) {
	t.Helper()
	img := testenv.DecodePNG(t, path)
	b := img.Bounds()
	colored := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if max(r, g, bl)-min(r, g, bl) > 0x3000 { // a series' colour, not grey text or white
				colored++
			}
		}
	}
	if b.Dx() < 1000 || colored < 500 {
		t.Errorf("comparison.png is %v with %d coloured samples: not the two charts", b, colored)
	}
}

// TestResumeAfterInterrupt: Ctrl-C during an experiment takes the current
// stack down and keeps the finished runs; running the file again skips
// them and finishes the rest.
func TestResumeAfterInterrupt(t *testing.T) {
	c := newCrawlctl(t)
	out := t.TempDir()
	file := writeFile(t, "name: resume\n"+small+"repeats: 3\nscenarios:\n  - {name: one_egress, proxies: 1}\n")
	cmd, _, errb := c.command("experiment", "run", file, "--out", out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(out, "resume", "one_egress", "1", "run.json")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(first); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the first run never completed:\n%s", errb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("an interrupted experiment exited 0:\n%s", errb)
	}
	if !strings.Contains(errb.String(), "interrupted") || !strings.Contains(errb.String(), "run the file again to resume") {
		t.Errorf("the interrupt is not reported as such:\n%s", errb)
	}
	firstBytes, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	// The stack is down: nothing answers as stack exp-resume.
	st, _, stErr := c.command("--name", "exp-resume", "status")
	if st.Run() == nil {
		t.Errorf("stack exp-resume is still up after the interrupt: %s", stErr)
	}

	_, stderr := c.must("experiment", "run", file, "--out", out)
	if !strings.Contains(stderr, "[1/3] one_egress #1: complete already, skipped") || strings.Count(stderr, "drained in") < 1 {
		t.Errorf("the second run did not resume:\n%s", stderr)
	}
	again, _ := os.ReadFile(first)
	if !bytes.Equal(again, firstBytes) {
		t.Error("resuming rewrote the finished run")
	}
	for _, r := range []string{"1", "2", "3"} {
		if _, err := os.Stat(filepath.Join(out, "resume", "one_egress", r, "run.json")); err != nil {
			t.Errorf("run %s: %v", r, err)
		}
	}
}
