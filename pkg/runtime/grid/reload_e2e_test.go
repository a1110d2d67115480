package grid_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	osproc "github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/internal/testenv"
)

// TestReloadsLoseNoSession: the grid gets 20 SIGHUPs while Playwright
// sessions run and new ones keep opening, and a keep-alive HTTP client
// that does not retry polls its /healthz: no client sees an error, and
// every replaced process exits.
func TestReloadsLoseNoSession(t *testing.T) {
	s := newStack(t)
	s.browser(t, "browser", "--max-concurrent-sessions", "10")
	pidFile := filepath.Join(t.TempDir(), "grid.pid")
	g := s.grid(t, "--pid-file", pidFile)
	waitWorkers(t, g, 1)
	pid := pidReader(pidFile)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sessions []result
	var waves atomic.Int64
	wg.Go(func() { // Playwright sessions opening and held throughout
		for ctx.Err() == nil {
			rs := s.clients(t, clientPlan{WS: wsURL(g), Sessions: 3, Concurrency: 3, URL: s.page, HoldMs: 700})
			mu.Lock()
			sessions = append(sessions, rs...)
			mu.Unlock()
			waves.Add(1)
		}
	})
	var polls testenv.Tally
	addr := strings.TrimPrefix(g.base, "http://")
	wg.Go(func() { testenv.KeepAlive(ctx, addr, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n", &polls) })
	testenv.Eventually(t, 2*time.Minute, "a first wave of sessions", func() bool { return waves.Load() > 0 })

	seen := map[int]bool{}
	for i := range 20 {
		old := pid()
		seen[old] = true
		before := polls.OK.Load()
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		testenv.Eventually(t, time.Minute, "the new grid process", func() bool { p := pid(); return p != old && p > 0 })
		testenv.Eventually(t, time.Minute, "polls after the hand-off", func() bool { return polls.OK.Load() >= before+20 })
	}
	// Sessions opened through the last hand-offs finish too.
	after := waves.Load()
	testenv.Eventually(t, 2*time.Minute, "a wave of sessions after the reloads", func() bool { return waves.Load() > after })
	cancel()
	wg.Wait()
	last := pid()
	t.Cleanup(func() { syscall.Kill(last, syscall.SIGTERM) })

	failedSessions := 0
	for _, r := range sessions {
		if !r.OK {
			failedSessions++
			t.Errorf("session %d failed: %s", r.I, r.Error)
		}
	}
	t.Logf("%d sessions (%d failed), %d polls (%d failed) through 20 reloads", len(sessions), failedSessions, polls.OK.Load(), polls.Failed.Load())
	if polls.Failed.Load() != 0 {
		t.Errorf("%d polls of /healthz lost; first: %v", polls.Failed.Load(), polls.FirstError())
	}
	testenv.Eventually(t, 2*time.Minute, "old grid processes to exit", func() bool {
		for p := range seen {
			if osproc.Alive(p) {
				return false
			}
		}
		return true
	})
}
