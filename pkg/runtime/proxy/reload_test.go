package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// startReloadingProxy starts the test binary as a proxy process that
// reloads on SIGHUP and allows target; it returns the address it listens
// on and a func reading the serving process's pid (0 before the first).
func startReloadingProxy(t *testing.T, target string) (string, func() int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "proxy.pid")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CRAWLCTL_TEST_HELPER=proxy", "HELPER_ALLOW="+hostOf(target),
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
	return listen, pid
}

// reload sends SIGHUP to the serving process and waits for its successor
// to write its pid; it returns the old pid.
func reload(t *testing.T, pid func() int) int {
	t.Helper()
	old := pid()
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to %d: %v", old, err)
	}
	testenv.Eventually(t, time.Minute, "the new process to take over", func() bool { p := pid(); return p != old && p > 0 })
	return old
}

// TestReloadWhileAPredecessorStillHandsOver: a reload that comes while the
// serving process is still adopting connections from its predecessor (one
// answering a slow request there) must wait for them and pass them on;
// were it to finish and exit first, the predecessor could hand the
// connection to nobody and close it under a client that does not retry.
func TestReloadWhileAPredecessorStillHandsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 processes")
	}
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	listen, pid := startReloadingProxy(t, be.URL)

	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func(path string) string {
		return fmt.Sprintf("GET %s%s HTTP/1.1\r\nHost: %s\r\n\r\n", be.URL, path, hostOf(be.URL))
	}
	if _, err := testenv.Exchange(c, br, get("/first")); err != nil {
		t.Fatal(err)
	}
	first := pid()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, get("/slow")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the slow request never reached the backend")
	}
	reload(t, pid) // the first process keeps the connection: a request is in flight
	second := reload(t, pid)
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the slow response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The connection went first -> second -> third: the next request on it
	// is answered.
	if closed, err := testenv.Exchange(c, br, get("/after")); err != nil || closed {
		t.Fatalf("the request after the hand-offs: closed %v, %v", closed, err)
	}
	testenv.Eventually(t, time.Minute, "the replaced processes to exit", func() bool {
		return !proc.Alive(first) && !proc.Alive(second)
	})
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
	listen, pid := startReloadingProxy(t, be.URL)

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
	for range 20 {
		before := total()
		seen[reload(t, pid)] = true
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
