package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/internal/testenv"
)

// tunnelClient opens CONNECT tunnels to the target, sends 20 keep-alive
// requests through each, and closes it; it never retries either.
func tunnelClient(ctx context.Context, proxyAddr, target string, n *testenv.Tally) {
	host := strings.TrimPrefix(target, "http://")
	for ctx.Err() == nil {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			n.Fail(fmt.Errorf("dialing the proxy: %w", err))
			continue
		}
		br := bufio.NewReader(c)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusOK {
			n.Fail(fmt.Errorf("CONNECT: %v %v", resp, err))
			c.Close()
			continue
		}
		for range 20 {
			if ctx.Err() != nil {
				break
			}
			if _, err := testenv.Exchange(c, br, fmt.Sprintf("GET /reload HTTP/1.1\r\nHost: %s\r\n\r\n", host)); err != nil {
				n.Fail(fmt.Errorf("through the tunnel: %w", err))
				break
			}
			n.OK.Add(1)
		}
		c.Close()
	}
}

// TestReloadLosesNoRequest: clients that do not retry (raw keep-alive
// connections, absolute-form and through CONNECT tunnels) load the proxy
// process while it gets 20 SIGHUPs; not one request may fail, requests go
// through during every hand-off, and the keep-alive connections are handed
// from process to process, never closed: each client dials once.
func TestReloadLosesNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 21 processes")
	}
	be := newBackend(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "proxy.pid")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CRAWLCTL_TEST_HELPER=proxy", "HELPER_ALLOW="+hostOf(be.URL),
		"HELPER_LISTEN="+listen, "HELPER_PIDFILE="+pidFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	pid := func() int {
		b, _ := os.ReadFile(pidFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	testenv.Eventually(t, 30*time.Second, "the proxy to write its pid", func() bool { return pid() > 0 })
	t.Cleanup(func() {
		if p := pid(); p > 0 {
			syscall.Kill(p, syscall.SIGTERM)
		}
	})

	var plain, tunneled testenv.Tally
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			testenv.KeepAlive(ctx, listen, fmt.Sprintf("GET %s/reload HTTP/1.1\r\nHost: %s\r\n\r\n", be.URL, hostOf(be.URL)), &plain)
		})
	}
	for range 4 {
		wg.Go(func() { tunnelClient(ctx, listen, be.URL, &tunneled) })
	}
	total := func() int64 { return plain.OK.Load() + tunneled.OK.Load() }
	seen := map[int]bool{}
	for i := range 20 {
		old := pid()
		seen[old] = true
		before := total()
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		testenv.Eventually(t, time.Minute, "the new process to take over", func() bool { p := pid(); return p != old && p > 0 })
		// Load through the hand-off: requests keep succeeding while the old
		// process drains and the new one serves.
		testenv.Eventually(t, time.Minute, "requests to go through after the hand-off", func() bool { return total() >= before+200 })
	}
	cancel()
	wg.Wait()
	t.Logf("absolute-form: %d ok, %d failed on %d connections; tunneled: %d ok, %d failed (%d processes)",
		plain.OK.Load(), plain.Failed.Load(), plain.Dials.Load(), tunneled.OK.Load(), tunneled.Failed.Load(), len(seen)+1)
	if d := plain.Dials.Load(); d != 8 {
		t.Errorf("the 8 keep-alive clients opened %d connections over 20 reloads, want 8: a connection was closed, not handed over", d)
	}
	for name, n := range map[string]*testenv.Tally{"absolute-form": &plain, "CONNECT": &tunneled} {
		if n.Failed.Load() != 0 {
			t.Errorf("%s: %d requests lost during reloads; first: %v", name, n.Failed.Load(), n.FirstError())
		}
		if n.OK.Load() == 0 {
			t.Errorf("%s: no request went through", name)
		}
	}
	// Every replaced process drained and exited.
	testenv.Eventually(t, time.Minute, "old processes to exit", func() bool {
		for p := range seen {
			if proc.Alive(p) {
				return false
			}
		}
		return true
	})
}
