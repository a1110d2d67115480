package local_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// BenchmarkUp times `crawlctl up` to ready (every component answering
// /readyz) with the default plan: broker, Redis, simulator, API, metrics
// store, 3 proxies, a graph writer and a worker. `down` is outside the timer.
func BenchmarkUp(b *testing.B) {
	bin := testenv.Crawlctl(b)
	home := b.TempDir()
	env := append(os.Environ(), "XDG_STATE_HOME="+home, "XDG_CONFIG_HOME="+home, "CRAWLCTL_NAME=bench")
	run := func(args ...string) []byte {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("crawlctl %v: %v", args, err)
		}
		return out
	}
	b.Cleanup(func() { exec.Command(bin, "down", "--purge").Run() })
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		var st struct{ PID int }
		if err := json.Unmarshal(run("up", "-q", "--provider", "local", "-o", "json"), &st); err != nil || st.PID == 0 {
			b.Fatalf("up: %v", err)
		}
		total += time.Since(start)
		b.StopTimer()
		run("down", "-q", "--purge")
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
}
