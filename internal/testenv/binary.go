package testenv

import (
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
	binOnce sync.Once
	binPath string
	binErr  error
)

// Crawlctl builds the crawlctl binary once per test process, static like a
// release (CGO_ENABLED=0, -trimpath), and returns its path, for tests and
// benchmarks that measure the real program.
func Crawlctl(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crawlctl-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "crawlctl")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "github.com/crawlctl/crawlctl/cmd/crawlctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
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
