package grid_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	osproc "github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/internal/testenv"
)

// pollKeepAlive is an HTTP client that never retries: on one keep-alive
// connection it asks for path again the moment an answer ends, dialing
// again only after a response that said Connection: close.
func pollKeepAlive(ctx context.Context, addr, path string, ok, failed *atomic.Int64, first *atomic.Value) {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	fail := func(err error) {
		failed.Add(1)
		first.CompareAndSwap(nil, err.Error())
		if c != nil {
			c.Close()
			c = nil
		}
	}
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				c = nil
				fail(err)
				continue
			}
			br = bufio.NewReader(c)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
			fail(err)
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			fail(err)
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fail(fmt.Errorf("status %d, %v", resp.StatusCode, err))
			continue
		}
		ok.Add(1)
		if resp.Close {
			c.Close()
			c = nil
		}
	}
}

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
	pid := func() int {
		b, _ := os.ReadFile(pidFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}

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
	var polled, pollFailed atomic.Int64
	var pollErr atomic.Value
	wg.Go(func() {
		pollKeepAlive(ctx, strings.TrimPrefix(g.base, "http://"), "/healthz", &polled, &pollFailed, &pollErr)
	})
	testenv.Eventually(t, 2*time.Minute, "a first wave of sessions", func() bool { return waves.Load() > 0 })

	seen := map[int]bool{}
	for i := range 20 {
		old := pid()
		seen[old] = true
		before := polled.Load()
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		testenv.Eventually(t, time.Minute, "the new grid process", func() bool { p := pid(); return p != old && p > 0 })
		testenv.Eventually(t, time.Minute, "polls after the hand-off", func() bool { return polled.Load() >= before+20 })
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
	t.Logf("%d sessions (%d failed), %d polls (%d failed) through 20 reloads", len(sessions), failedSessions, polled.Load(), pollFailed.Load())
	if pollFailed.Load() != 0 {
		t.Errorf("%d polls of /healthz lost; first: %v", pollFailed.Load(), pollErr.Load())
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
