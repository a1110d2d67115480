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

	"golang.org/x/sys/unix"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
)

// BenchmarkWorker measures one `crawlctl run worker` process (the runtime
// build, as in the worker's pods) against the
// simulator with rate limits off: each iteration is a fresh 20-seed,
// depth-3 run (4,033 jobs, 2,294 of them fetched). The worker runs with
// GOMAXPROCS=1, pinned to CPU 1 by taskset when BENCH_PIN=1 (bench/worker.sh
// pins the broker, Redis and the simulator to CPU 0). Reported: jobs/s,
// crawled/s, the worker's peak RSS at start-up and while crawling, its peak
// anonymous memory and, run as root, what a pod's memory cgroup with the
// budget's worker limit charges it (peak charge and working set, as the
// kubelet counts them). page-cache=cold first evicts the binary from the
// page cache, so the worker's cgroup pays for every page of it that it
// reads, as the first worker pod on a node does; page-cache=warm is every
// other worker pod, whose binary pages other pods brought in.
func BenchmarkWorker(b *testing.B) {
	for _, jobs := range []int{5, 20} {
		for _, cache := range []string{"warm", "cold"} {
			b.Run(fmt.Sprintf("concurrent=%d/page-cache=%s", jobs, cache), func(b *testing.B) { benchWorker(b, jobs, cache == "cold") })
		}
	}
}

func benchWorker(b *testing.B, concurrent int, cold bool) {
	s := startStack(b, quietSim(), 32)
	bin := testenv.CrawlctlBench(b) // the runtime build, as worker pods run
	argv := []string{bin, "run", "worker", "-q",
		"--kafka", strings.Join(s.brokers, ","), "--redis", s.redis, "--target", s.target.String(),
		"--admin-listen", "127.0.0.1:0", "--concurrent-jobs", strconv.Itoa(concurrent)}
	if os.Getenv("BENCH_PIN") == "1" {
		if _, err := exec.LookPath("taskset"); err != nil {
			b.Fatal("BENCH_PIN=1 needs taskset (util-linux)")
		}
		argv = append([]string{"taskset", "-c", "1"}, argv...)
	}
	plan, err := budget.Compute(budget.DefaultInput())
	if err != nil {
		b.Fatal(err)
	}
	cg, err := testenv.NewMemoryCgroup(b, plan.PerPodLimitMi<<20)
	if err != nil {
		b.Logf("no cgroup figures: %v", err)
	} else {
		argv = cg.Wrap(argv...)
	}
	if cold {
		if err := evictFromPageCache(bin); err != nil {
			b.Fatal(err)
		}
	}
	w := exec.Command(argv[0], argv[1:]...)
	w.Env = append(os.Environ(), "GOMAXPROCS=1")
	w.Stderr = os.Stderr
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Process.Kill(); w.Wait() })
	peakWS := func() float64 { return 0 }
	if cg != nil {
		peakWS = samplePeak(cg.WorkingSetMiB)
	}
	// Warm up: the group forms and connections open.
	warm := s.seed(api.RunRequest{Name: "warmup", Seeds: openlibrary.Seeds[:1], MaxDepth: ptr(1)})
	s.waitDrained(warm.ID, time.Minute)

	// The peak of start-up (package initialisation maps most of the binary
	// before the worker gives those pages back) is reported apart from the
	// peak while crawling.
	startPeak := peakRSSMiB(b, w.Process.Pid)
	if err := testenv.ResetPeakRSS(w.Process.Pid); err != nil {
		b.Fatal(err)
	}
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
	b.ReportMetric(startPeak, "start-peak-RSS-MiB")
	b.ReportMetric(peakAnon(), "peak-anon-MiB")
	if cg != nil {
		b.ReportMetric(peakWS(), "pod-working-set-MiB")
		b.ReportMetric(cg.PeakMiB(), "pod-peak-charge-MiB")
	}
	b.ReportMetric(0, "ns/op") // a run's wall time is not the figure
}

// sampleAnon samples a process's anonymous resident memory every 10ms
// (the part that is its own: the binary's pages are shared) and returns a
// function giving the peak.
func sampleAnon(pid int) func() float64 {
	return samplePeak(func() float64 { return testenv.StatusMiB(pid, "RssAnon:") })
}

// samplePeak samples f every 10ms and returns a function stopping the
// sampling and giving the peak.
func samplePeak(f func() float64) func() float64 {
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
				if v := f(); v > 0 {
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

// evictFromPageCache drops a file's clean pages from the page cache (no
// process may map it), so the next reader reads, and is charged for, them.
func evictFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s from the page cache: %w", path, err)
	}
	return nil
}

// peakRSSMiB is a process's peak resident set (VmHWM).
func peakRSSMiB(b *testing.B, pid int) float64 {
	v := testenv.StatusMiB(pid, "VmHWM:")
	if v == 0 {
		b.Fatal("no VmHWM in /proc status")
	}
	return v
}
