package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/runtime/proxy"
)

// site counts requests per egress address and can refuse one with 429.
type site struct {
	*httptest.Server
	mu       sync.Mutex
	byEgress map[string]int
	limited  string // egress IP answered 429
}

func newSite(t *testing.T) *site {
	s := &site{byEgress: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.mu.Lock()
		s.byEgress[ip]++
		limited := s.limited == ip
		s.mu.Unlock()
		if limited {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *site) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.byEgress {
		out[k] = v
	}
	return out
}

// startProxies runs n real egress proxies, the i-th dialing from 127.0.0.(i+2).
func startProxies(t *testing.T, s *site, n int) ([]string, []*killableListener) {
	var urls []string
	var lns []*killableListener
	for i := range n {
		p, err := proxy.New(proxy.Options{Allow: []string{s.Listener.Addr().String()}, EgressIP: net.IPv4(127, 0, 0, byte(i+2))})
		if err != nil {
			t.Fatal(err)
		}
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := &killableListener{Listener: inner}
		go p.ServeListener(ln)
		t.Cleanup(ln.kill)
		urls = append(urls, "http://"+inner.Addr().String())
		lns = append(lns, ln)
	}
	return urls, lns
}

// killableListener remembers what it accepted, so a test can kill the
// proxy behind it: no new connection, and every open one reset.
type killableListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *killableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *killableListener) kill() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

func newPool(t *testing.T, o Options) *Pool {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func get(t *testing.T, p *Pool, u string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	resp, egress, err := p.Fetch(req, 30*time.Second)
	if err != nil {
		return 0, egress, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, egress, nil
}

// fetchAll sends n requests, 10 at a time, and returns how long it took.
func fetchAll(t *testing.T, p *Pool, u string, n int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, _, err := get(t, p, u); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func TestPacingSpreadsAcrossEgress(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 3)
	p := newPool(t, Options{Proxies: proxies, Rate: 20, Burst: 1})
	took := fetchAll(t, p, s.URL+"/x", 60)
	c := s.counts()
	for i := 2; i <= 4; i++ {
		if n := c[fmt.Sprintf("127.0.0.%d", i)]; n < 15 || n > 25 {
			t.Errorf("egress 127.0.0.%d got %d of 60 requests: %v", i, n, c)
		}
	}
	// 60 requests at 20/s on each of 3 egress: about 1 s, never faster than
	// the pacing allows (the counts above show the spread; a slow machine
	// may take longer, which proves nothing about pacing).
	if took < 800*time.Millisecond {
		t.Errorf("60 requests took %v: faster than 3 egress × 20/s allow", took)
	}
}

func TestClientScopeSharesOneBudget(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 3)
	p := newPool(t, Options{Proxies: proxies, Rate: 20, Burst: 1, Scope: ScopeClient})
	// 30 requests at 20/s for the whole client: about 1.5 s, however many egress.
	if took := fetchAll(t, p, s.URL+"/x", 30); took < 1300*time.Millisecond {
		t.Errorf("30 requests took %v; a shared 20/s budget needs about 1.5s", took)
	}
}

func Test429SlowsOnlyItsQueue(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 3)
	s.limited = "127.0.0.2"
	p := newPool(t, Options{Proxies: proxies, Rate: 50, Burst: 1})
	fetchAll(t, p, s.URL+"/x", 60)
	host := hostOf(s.URL)
	rates := map[string]float64{}
	for _, m := range p.members {
		rates[m.name] = p.pacerFor(m, host).limit()
	}
	slowed := p.pacerFor(p.members[0], host).limit()
	if slowed >= 50 {
		t.Errorf("the throttled egress still paces at %v/s: %v", slowed, rates)
	}
	for _, m := range p.members[1:] {
		if r := p.pacerFor(m, host).limit(); r != 50 {
			t.Errorf("egress %s slowed to %v/s by another egress's 429s", m.name, r)
		}
	}
	c := s.counts()
	if c["127.0.0.2"] >= c["127.0.0.3"] {
		t.Errorf("the throttled egress kept its share: %v", c)
	}
	// The rate comes back after quiet periods.
	pc := p.pacerFor(p.members[0], host)
	later := time.Now().Add(time.Hour)
	for range 20 {
		later = later.Add(p.opts.QuietPeriod)
		pc.quiet(later)
	}
	if pc.limit() != 50 {
		t.Errorf("after quiet periods the rate is %v/s, want back to 50", pc.limit())
	}
}

func TestHashAssignmentIsFixed(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 3)
	p := newPool(t, Options{Proxies: proxies, Assignment: AssignHash, Hostname: "worker-7"})
	want := p.fixed.name
	for range 10 {
		if _, egress, err := get(t, p, s.URL+"/x"); err != nil || egress != want {
			t.Fatalf("egress %s (%v), want always %s", egress, err, want)
		}
	}
	p2 := newPool(t, Options{Proxies: proxies, Assignment: AssignHash, Hostname: "worker-7"})
	if p2.fixed.name != want {
		t.Error("the same hostname picked another proxy")
	}
}

func TestFailoverWhenAProxyDies(t *testing.T) {
	s := newSite(t)
	proxies, srvs := startProxies(t, s, 3)
	p := newPool(t, Options{Proxies: proxies})
	srvs[0].kill()
	killed := time.Now()
	for i := range 30 {
		code, egress, err := get(t, p, s.URL+"/x")
		if err != nil || code != 200 {
			t.Fatalf("request %d after the kill: %d %v", i, code, err)
		}
		if egress == hostOf(proxies[0]) {
			t.Fatalf("request %d went to the dead proxy", i)
		}
	}
	if !p.members[0].down.Load() {
		t.Error("the dead proxy is not marked down")
	}
	if since := time.Since(killed); since > time.Second {
		t.Logf("30 requests took %v", since)
	}
}

func TestBreakerTripsOnFifthFailureAndRecovers(t *testing.T) {
	s := newSite(t)
	port := testenv.FreePort(t)
	deadURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := newPool(t, Options{Proxies: []string{deadURL}, BreakerTimeout: 300 * time.Millisecond, MaxWait: 200 * time.Millisecond,
		HealthInterval: 500 * time.Millisecond})
	m := p.members[0]
	for i := 1; i <= 5; i++ {
		m.down.Store(false) // passive marking aside: count the breaker alone
		if _, err := p.send(m, mustReq(s.URL)); err == nil {
			t.Fatal("a request through a dead proxy succeeded")
		}
		if want := i < 5; (m.cb.State() == gobreaker.StateClosed) != want {
			t.Fatalf("after %d failures the breaker is %v", i, m.cb.State())
		}
	}
	if m.cb.State() != gobreaker.StateOpen {
		t.Fatalf("breaker %v after 5 failures", m.cb.State())
	}
	start := time.Now()
	if _, _, err := get(t, p, s.URL+"/x"); !errors.Is(err, ErrNoEgress) || time.Since(start) > 5*time.Second { // not the 30s default
		t.Errorf("every proxy down: %v after %v, want ErrNoEgress within MaxWait", err, time.Since(start))
	}
	// The proxy comes back on the same port: health check, half-open, closed.
	px, err := proxy.New(proxy.Options{Allow: []string{s.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	go px.ServeListener(ln)
	defer ln.Close()
	testenv.Eventually(t, 30*time.Second, "the pool to use the proxy again", func() bool {
		code, _, err := get(t, p, s.URL+"/x")
		return err == nil && code == 200
	})
	if m.cb.State() != gobreaker.StateClosed {
		t.Errorf("breaker %v after a success", m.cb.State())
	}
}

func mustReq(u string) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	return req
}

func hostOf(s string) string { u, _ := url.Parse(s); return u.Host }

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Proxies: []string{"socks5://x:1"}},
		{Proxies: []string{"http://x:1"}, Assignment: "random"},
		{Proxies: []string{"http://x:1"}, Scope: "global"},
	} {
		if p, err := New(o); err == nil {
			p.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestSharedPacingAcrossWorkers: two pools (two worker processes) on one
// Redis draw on one budget per egress, and a 429 seen by one slows the
// other.
func TestSharedPacingAcrossWorkers(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 3)
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis(t)})
	t.Cleanup(func() { rdb.Close() })
	a := newPool(t, Options{Proxies: proxies, Rate: 20, Redis: rdb})
	b := newPool(t, Options{Proxies: proxies, Rate: 20, Redis: rdb})
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { fetchAll(t, a, s.URL+"/x", 45) })
	wg.Go(func() { fetchAll(t, b, s.URL+"/x", 45) })
	wg.Wait()
	// 90 requests at 20/s on each of 3 egress, shared: about 1.5 s. Each
	// pool pacing alone would take about 0.75 s.
	if took := time.Since(start); took < 1300*time.Millisecond {
		t.Errorf("90 requests from two pools took %v: the budget was not shared", took)
	}
	for ip, n := range s.counts() {
		if n < 20 || n > 40 {
			t.Errorf("egress %s got %d of 90: %v", ip, n, s.counts())
		}
	}
	// A 429 through one pool slows that egress for the other.
	s.mu.Lock()
	s.limited = "127.0.0.2"
	s.mu.Unlock()
	fetchAll(t, a, s.URL+"/x", 30)
	key := paceKey(hostOf(s.URL), hostOf(proxies[0]))
	iv, err := rdb.HGet(context.Background(), key, "iv").Float64()
	if err != nil || iv <= 50 {
		t.Errorf("after 429s the shared interval of %s is %v ms (%v), want above the base 50 ms", key, iv, err)
	}
}
