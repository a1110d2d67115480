package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// TestMain lets the test binary run as a proxy process for the reload test.
func TestMain(m *testing.M) {
	if os.Getenv("CRAWLCTL_TEST_HELPER") == "proxy" {
		p, err := New(Options{Allow: []string{os.Getenv("HELPER_ALLOW")}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ctx, stop := signalContext()
		defer stop()
		err = Serve(ctx, p, ServeOptions{Listen: os.Getenv("HELPER_LISTEN"), AdminListen: "127.0.0.1:0",
			PIDFile: os.Getenv("HELPER_PIDFILE"), DrainTimeout: 5 * time.Second}, prometheus.NewRegistry(), helperLog())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// backend is an upstream that reports what it saw.
type backend struct {
	*httptest.Server
	mu      sync.Mutex
	remote  string
	headers http.Header
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.remote, b.headers = r.RemoteAddr, r.Header.Clone()
		b.mu.Unlock()
		if r.URL.Path == "/limited" {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

// proxyServer is a proxy serving on a loopback port.
type proxyServer struct{ URL string }

func startProxy(t *testing.T, opts Options) (*proxyServer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := newConnServer(p, 4<<10)
	go cs.Serve(ln)
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cs.Drain(ctx)
	})
	return &proxyServer{URL: "http://" + ln.Addr().String()}, reg
}

func proxiedClient(proxyURL string) *http.Client {
	u, _ := url.Parse(proxyURL)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 10 * time.Second}
}

func hostOf(s string) string { u, _ := url.Parse(s); return u.Host }

func TestAbsoluteFormForwardsAndStripsHopByHop(t *testing.T) {
	be := newBackend(t)
	px, reg := startProxy(t, Options{Allow: []string{hostOf(be.URL)}, EgressIP: net.ParseIP("127.0.0.2")})
	req, _ := http.NewRequest("GET", be.URL+"/works/OL1W.json", nil)
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("X-Keep", "end-to-end")
	resp, err := proxiedClient(px.URL).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /works/OL1W.json" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.headers.Get("X-Secret") != "" || be.headers.Get("Proxy-Authorization") != "" || be.headers.Get("X-Keep") != "end-to-end" {
		t.Errorf("upstream saw headers %v", be.headers)
	}
	if host, _, _ := net.SplitHostPort(be.remote); host != "127.0.0.2" {
		t.Errorf("upstream saw the request from %s, want the egress address 127.0.0.2", be.remote)
	}
	if got := counter(reg, "crawl_proxy_requests_total", map[string]string{"method": "GET", "code": "200"}); got != 1 {
		t.Errorf("requests metric %v", got)
	}
}

// counter sums the series of name whose labels include want.
func counter(reg *prometheus.Registry, name string, want map[string]string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			} else {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func TestUpstream429IsCounted(t *testing.T) {
	be := newBackend(t)
	px, reg := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	resp, err := proxiedClient(px.URL).Get(be.URL + "/limited")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || counter(reg, "crawl_proxy_upstream_rate_limited_total", nil) != 1 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestConnectTunnelToTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	t.Cleanup(ts.Close)
	px, reg := startProxy(t, Options{Allow: []string{hostOf(ts.URL)}})
	tr := ts.Client().Transport.(*http.Transport).Clone()
	pu, _ := url.Parse(px.URL)
	tr.Proxy = http.ProxyURL(pu)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(ts.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "secure" {
		t.Fatalf("through the tunnel: %q", body)
	}
	if counter(reg, "crawl_proxy_requests_total", map[string]string{"method": "CONNECT", "code": "200"}) != 1 {
		t.Error("CONNECT not counted")
	}
	tr.CloseIdleConnections()
	testenv.Eventually(t, 5*time.Second, "the tunnel to close", func() bool {
		return counter(reg, "crawl_proxy_active_tunnels", nil) == 0
	})
}

func TestNeverAnOpenProxy(t *testing.T) {
	be := newBackend(t)
	other := newBackend(t)
	px, reg := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	c := proxiedClient(px.URL)
	for _, u := range []string{other.URL + "/", "http://169.254.169.254/latest/meta-data/", "http://example.com/"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "not on this proxy's allow-list") {
			t.Errorf("%s: %d %q", u, resp.StatusCode, body)
		}
	}
	// CONNECT elsewhere is refused too.
	conn, err := net.Dial("tcp", hostOf(px.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostOf(other.URL), hostOf(other.URL))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Errorf("CONNECT elsewhere: %v %v", resp, err)
	}
	if got := counter(reg, "crawl_proxy_refused_total", map[string]string{"reason": "destination"}); got != 4 {
		t.Errorf("refused metric %v, want 4", got)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("a proxy with no allow-list was built")
	}
	for _, bad := range []string{"*", "*:80", "a b", "host:port"} {
		if _, err := New(Options{Allow: []string{bad}}); err == nil {
			t.Errorf("allow %q accepted", bad)
		}
	}
}

func TestMalformedAndOversized(t *testing.T) {
	be := newBackend(t)
	px, _ := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	raw := func(req string) int {
		conn, err := net.Dial("tcp", hostOf(px.URL))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", req[:min(len(req), 40)], err)
		}
		return resp.StatusCode
	}
	cases := []struct {
		name, req string
		want      int
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400},
		{"origin form", "GET /works HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"ftp", "GET ftp://" + hostOf(be.URL) + "/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"connect without port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"oversized header", "GET " + be.URL + "/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
	}
	for _, c := range cases {
		if got := raw(c.req); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// Still serving afterwards.
	resp, err := proxiedClient(px.URL).Get(be.URL + "/ok")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after bad requests: %v %v", resp, err)
	}
	resp.Body.Close()
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func helperLog() *slog.Logger {
	if os.Getenv("HELPER_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return discardLog()
}
