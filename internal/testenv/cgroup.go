package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// MemoryCgroup is a memory cgroup of its own, for measuring a process as
// the kubelet measures a container: its charge (anonymous memory plus the
// page cache it brought in) and working set (the charge less inactive file
// pages; what `kubectl top` shows and eviction uses), under a limit as a
// pod's.
type MemoryCgroup struct {
	dir string
	v2  bool
}

// NewMemoryCgroup creates a memory cgroup limited to limitBytes, removed
// when the test ends. Without a writable memory controller (not root, no
// cgroup fs) it returns an error saying so.
func NewMemoryCgroup(t testing.TB, limitBytes int64) (*MemoryCgroup, error) {
	t.Helper()
	name := fmt.Sprintf("crawlctl-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	cg := &MemoryCgroup{}
	switch {
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		cg.dir, cg.v2 = filepath.Join("/sys/fs/cgroup", name), true
	case fileExists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
		cg.dir = filepath.Join("/sys/fs/cgroup/memory", name)
	default:
		return nil, fmt.Errorf("no memory cgroup controller under /sys/fs/cgroup")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating a memory cgroup (needs root): %w", err)
	}
	t.Cleanup(func() {
		// The processes in it are gone by now (their cleanups ran first).
		if err := os.Remove(cg.dir); err != nil {
			t.Logf("removing cgroup %s: %v", cg.dir, err)
		}
	})
	limit := "memory.limit_in_bytes"
	if cg.v2 {
		limit = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(cg.dir, limit), []byte(strconv.FormatInt(limitBytes, 10)), 0); err != nil {
		return nil, fmt.Errorf("limiting cgroup %s: %w", cg.dir, err)
	}
	return cg, nil
}

// Wrap is argv run inside the cgroup from its first instruction: a shell
// joins the cgroup and execs argv, so start-up is charged too.
func (cg *MemoryCgroup) Wrap(argv ...string) []string {
	return append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg.dir, "cgroup.procs")}, argv...)
}

// usageMiB is the cgroup's current charge.
func (cg *MemoryCgroup) usageMiB() float64 {
	f := "memory.usage_in_bytes"
	if cg.v2 {
		f = "memory.current"
	}
	return float64(cg.readInt(f)) / (1 << 20)
}

// PeakMiB is the cgroup's highest charge so far.
func (cg *MemoryCgroup) PeakMiB() float64 {
	f := "memory.max_usage_in_bytes"
	if cg.v2 {
		f = "memory.peak"
	}
	return float64(cg.readInt(f)) / (1 << 20)
}

// WorkingSetMiB is the charge less inactive file pages, as cAdvisor
// computes container_memory_working_set_bytes.
func (cg *MemoryCgroup) WorkingSetMiB() float64 {
	inactive := "total_inactive_file"
	if cg.v2 {
		inactive = "inactive_file"
	}
	return max(0, cg.usageMiB()-float64(cg.stat(inactive))/(1<<20))
}

func (cg *MemoryCgroup) stat(key string) int64 {
	b, _ := os.ReadFile(filepath.Join(cg.dir, "memory.stat"))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func (cg *MemoryCgroup) readInt(file string) int64 {
	b, _ := os.ReadFile(filepath.Join(cg.dir, file))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
