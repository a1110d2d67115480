package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
)

// BenchmarkWorker measures one `crawlctl run worker` process against the
// simulator with rate limits off: each iteration is a fresh 20-seed,
// depth-3 run (4,033 jobs, 2,294 of them fetched). The worker runs with
// GOMAXPROCS=1, pinned to CPU 1 by taskset when BENCH_PIN=1 (bench/worker.sh
// pins the broker, Redis and the simulator to CPU 0). Reported: jobs/s,
// crawled/s, and the worker's peak RSS.
func BenchmarkWorker(b *testing.B) {
	for _, jobs := range []int{5, 20} {
		b.Run(fmt.Sprintf("concurrent=%d", jobs), func(b *testing.B) { benchWorker(b, jobs) })
	}
}

func benchWorker(b *testing.B, concurrent int) {
	s := startStack(b, quietSim(), 32)
	prefix := []string{"env"}
	if os.Getenv("BENCH_PIN") == "1" {
		if _, err := exec.LookPath("taskset"); err != nil {
			b.Fatal("BENCH_PIN=1 needs taskset (util-linux)")
		}
		prefix = []string{"taskset", "-c", "1"}
	}
	w := exec.Command(prefix[0], append(prefix[1:], testenv.Crawlctl(b), "run", "worker", "-q",
		"--kafka", strings.Join(s.brokers, ","), "--redis", s.redis, "--target", s.target.String(),
		"--admin-listen", "127.0.0.1:0", "--concurrent-jobs", strconv.Itoa(concurrent))...)
	w.Env = append(os.Environ(), "GOMAXPROCS=1")
	w.Stderr = os.Stderr
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Process.Kill(); w.Wait() })
	// Warm up: the group forms and connections open.
	warm := s.seed(api.RunRequest{Name: "warmup", Seeds: openlibrary.Seeds[:1], MaxDepth: ptr(1)})
	s.waitDrained(warm.ID, time.Minute)

	var jobs, crawled int64
	peakAnon := sampleAnon(w.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		run := s.seed(api.RunRequest{Name: "bench", Seeds: openlibrary.Seeds})
		r := s.waitDrained(run.ID, 5*time.Minute)
		jobs += r.Counters.Enqueued
		crawled += r.Counters.Crawled
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(jobs)/elapsed, "jobs/s")
	b.ReportMetric(float64(crawled)/elapsed, "crawled/s")
	b.ReportMetric(peakRSSMiB(b, w.Process.Pid), "peak-RSS-MiB")
	b.ReportMetric(peakAnon(), "peak-anon-MiB")
	b.ReportMetric(0, "ns/op") // a run's wall time is not the figure
}

// sampleAnon samples a process's anonymous resident memory every 10ms
// (the part that is its own: the binary's pages are shared) and returns a
// function giving the peak.
func sampleAnon(pid int) func() float64 {
	var mu sync.Mutex
	peak := 0.0
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v := testenv.StatusMiB(pid, "RssAnon:"); v > 0 {
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
		}
	}()
	return func() float64 {
		close(stop)
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// peakRSSMiB is a process's peak resident set (VmHWM).
func peakRSSMiB(b *testing.B, pid int) float64 {
	v := testenv.StatusMiB(pid, "VmHWM:")
	if v == 0 {
		b.Fatal("no VmHWM in /proc status")
	}
	return v
}
