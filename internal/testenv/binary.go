package testenv

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	binMu    sync.Mutex
	binPaths = map[string]string{} // by build tags
)

// Crawlctl builds the crawlctl binary once per test process, static like a
// release (CGO_ENABLED=0, -trimpath), and returns its path, for tests and
// benchmarks that measure the real program.
func Crawlctl(t testing.TB) string { return build(t, "") }

// CrawlctlRuntime builds the runtime build of crawlctl (-tags
// crawlctl_runtime: the binary of the stack's images, without the Helm
// SDK), once per test process.
func CrawlctlRuntime(t testing.TB) string { return build(t, "crawlctl_runtime") }

// CrawlctlBench is the binary a benchmark of a runtime measures: the
// runtime build, which the stack's pods run, or with BENCH_BUILD=full the
// build users install (which links the Helm SDK and client-go too).
func CrawlctlBench(t testing.TB) string {
	if os.Getenv("BENCH_BUILD") == "full" {
		return Crawlctl(t)
	}
	return CrawlctlRuntime(t)
}

func build(t testing.TB, tags string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binPaths[tags]; ok {
		return p
	}
	// One directory per test process, so that a test can tell its own
	// processes by their binary's path; under one root, where each run
	// first removes the directories of test processes that have ended
	// (nothing else removes them). Not under XDG_CACHE_HOME, which tests
	// point at their own temporary directories.
	root := filepath.Join(os.TempDir(), fmt.Sprintf("crawlctl-testbin-%d", os.Getuid()))
	removeEnded(root)
	dir := filepath.Join(root, strconv.Itoa(os.Getpid()), cmp.Or(tags, "default"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "crawlctl")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", path, "github.com/crawlctl/crawlctl/cmd/crawlctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	binPaths[tags] = path
	return path
}

// removeEnded removes the directories under root named after a process
// that no longer runs.
func removeEnded(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// ResetPeakRSS resets a process's peak resident set (VmHWM) to its current
// one, so a later VmHWM is the peak since now.
func ResetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// StatusMiB reads a kB field of /proc/PID/status (VmRSS:, VmHWM:,
// RssAnon:) in MiB; 0 if absent.
func StatusMiB(pid int, field string) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
