package olsim

import (
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/openlibrary"
)

func startServer(t *testing.T, opts Options) (*httptest.Server, *Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(opts, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s) // listens on 127.0.0.1
	t.Cleanup(ts.Close)
	return ts, s, reg
}

// clientFrom returns a client whose connections leave from local IP ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

// TestCrawlOfBuiltInSeeds walks the catalogue breadth first from the 20
// built-in seeds to depth 3, through the real parser: every seed resolves,
// every page parses, and the crawl has thousands of URLs.
func TestCrawlOfBuiltInSeeds(t *testing.T) {
	opts := DefaultOptions()
	opts.NoLimits = true
	ts, _, _ := startServer(t, opts)
	tgt, err := openlibrary.NewTarget(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	type item struct {
		url   string
		depth int
	}
	var queue []item
	seen := map[string]bool{}
	for _, s := range openlibrary.Seeds {
		u, err := tgt.SeedURL(s)
		if err != nil {
			t.Fatal(err)
		}
		queue = append(queue, item{u, 0})
		seen[u] = true
	}
	client := clientFrom("127.0.0.1")
	edges, fetched := 0, 0
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		resp, err := client.Get(it.url)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s (depth %d)", it.url, resp.Status, it.depth)
		}
		u, _ := url.Parse(it.url)
		page, err := openlibrary.Parse(u, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", it.url, err)
		}
		fetched++
		edges += len(page.Edges)
		if it.depth >= 3 {
			continue
		}
		for _, l := range page.Links {
			c, err := tgt.Canonical(tgt.URL(l))
			if err != nil {
				t.Fatal(err)
			}
			if !seen[c] {
				seen[c] = true
				queue = append(queue, item{c, it.depth + 1})
			}
		}
	}
	t.Logf("20 seeds at depth 3: %d URLs, %d edges", fetched, edges)
	if fetched < 2000 || fetched > 10000 {
		t.Errorf("crawl of %d URLs; the default catalogue should give a few thousand", fetched)
	}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRateLimitPerClientIP(t *testing.T) {
	opts := DefaultOptions() // json: 3/s, burst 5
	ts, _, reg := startServer(t, opts)
	port := ts.Listener.Addr().(*net.TCPAddr).Port
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	count := func(c *http.Client, host string) (ok, limited int) {
		for range 10 {
			resp, body := get(t, c, "http://"+net.JoinHostPort(host, strconv.Itoa(port))+"/works/OL17732W.json")
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
				if resp.Header.Get("Retry-After") != "" {
					t.Errorf("429 carries Retry-After; Open Library sends none")
				}
				if !strings.Contains(body, `"status": 429`) || !strings.Contains(body, "Too Many Requests") {
					t.Errorf("429 body %q is not Open Library's", body)
				}
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		return
	}
	start := time.Now()
	okA, limA := count(a, "127.0.0.1")
	// A burst of 5 plus what 3/s refills while the loop runs (one token on a
	// fast machine, more on a slow one).
	refills := int(math.Ceil(time.Since(start).Seconds() * 3))
	if okA < 5 || okA > 5+refills || limA < 10-5-refills {
		t.Errorf("client A: %d ok, %d limited; want the burst of 5 then 429s", okA, limA)
	}
	okB, _ := count(b, "127.0.0.1")
	if okB < 5 {
		t.Errorf("client B from another IP got %d ok; limits must be per IP", okB)
	}
	if got := counterSum(t, reg, "crawl_olsim_rate_limited_total", "client_ip", "127.0.0.1"); got != float64(limA) {
		t.Errorf("rate-limited metric for 127.0.0.1 = %v, want %d", got, limA)
	}
}

func TestTimeFactorAndRules(t *testing.T) {
	rule, err := ParseRule("authors:/authors/:1:1")
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Rules = append([]Rule{rule}, opts.Rules...)
	opts.TimeFactor = 2 // authors: 2/s, a token every 500ms: three requests in a row outrun it on any machine
	ts, _, _ := startServer(t, opts)
	c := clientFrom("127.0.0.1")
	limited := 0
	for range 3 {
		if resp, _ := get(t, c, ts.URL+"/authors/OL9388A.json"); resp.StatusCode == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Error("three back-to-back author requests with burst 1 were all served")
	}
	time.Sleep(600 * time.Millisecond) // > 1/2 s: a token is back
	if resp, _ := get(t, c, ts.URL+"/authors/OL9388A.json"); resp.StatusCode != 200 {
		t.Errorf("after the refill: %d", resp.StatusCode)
	}
	// Works are under the json rule, not the authors one.
	if resp, _ := get(t, c, ts.URL+"/works/OL17732W.json"); resp.StatusCode != 200 {
		t.Errorf("work: %d", resp.StatusCode)
	}
	for _, bad := range []string{"x", "a:b", "a:/b:fast", "a:/b:1:0", ":/b:1"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

func TestFaults(t *testing.T) {
	opts := DefaultOptions()
	opts.NoLimits = true
	opts.ErrorRatio = 1
	ts, _, _ := startServer(t, opts)
	if resp, _ := get(t, clientFrom("127.0.0.1"), ts.URL+"/works/OL17732W.json"); resp.StatusCode != 500 {
		t.Errorf("error ratio 1: status %d", resp.StatusCode)
	}

	opts.ErrorRatio = 0
	opts.TruncateRatio = 1
	ts, _, _ = startServer(t, opts)
	resp, err := clientFrom("127.0.0.1").Get(ts.URL + "/authors/OL9388A/works.json")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ts.URL + "/authors/OL9388A/works.json")
	_, perr := openlibrary.Parse(u, resp.Body)
	resp.Body.Close()
	if perr == nil {
		t.Error("a truncated body parsed")
	}

	opts.TruncateRatio = 0
	opts.Latency = 50 * time.Millisecond
	ts, _, _ = startServer(t, opts)
	start := time.Now()
	get(t, clientFrom("127.0.0.1"), ts.URL+"/works/OL17732W.json")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency 50ms, answered in %v", d)
	}
}

func TestNotFoundAndRobots(t *testing.T) {
	opts := DefaultOptions()
	opts.NoLimits = true
	opts.CrawlDelay = 2 * time.Second
	ts, _, _ := startServer(t, opts)
	c := clientFrom("127.0.0.1")
	for _, p := range []string{"/works/OL1W.json", "/works/OL63W.json", "/works/OLxW.json", "/books/OL7M.json", "/people/x.json"} {
		if resp, _ := get(t, c, ts.URL+p); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	if _, body := get(t, c, ts.URL+"/robots.txt"); !strings.Contains(body, "Crawl-delay: 2") {
		t.Errorf("robots.txt: %q", body)
	}
}

// counterSum adds up the counter name over the series whose label has value.
func counterSum(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
