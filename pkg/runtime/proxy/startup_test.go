package proxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// BenchmarkRunProxyStartup starts `crawlctl run proxy` (the runtime build,
// GOMAXPROCS=1, as a reload does) until it writes its pid file, stops it,
// and reports the CPU the process used (user + system) per start: what
// every SIGHUP costs the proxy's CPU before any hand-off. Run with
// -benchtime 15x.
func BenchmarkRunProxyStartup(b *testing.B) {
	bin := testenv.CrawlctlRuntime(b)
	dir := b.TempDir()
	pidFile := filepath.Join(dir, "proxy.pid")
	var cpu time.Duration
	for b.Loop() {
		os.Remove(pidFile)
		cmd := exec.Command(bin, "run", "proxy", "-q", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--allow", "127.0.0.1:1", "--pid-file", pidFile, "--drain-timeout", "1s")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if st, err := os.Stat(pidFile); err == nil && st.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("the proxy wrote no pid file within 30 s")
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("the proxy exited with %v", err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/start")
}
