package grid

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// TestRefusals: what the grid answers before any worker is involved.
func TestRefusals(t *testing.T) {
	g, err := New(Options{Registry: gridregistry.NewMemory(gridregistry.DefaultPolicy), Token: "s3cret",
		AllowedOrigins: []string{"https://ok.example"}, SelectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler(&serve.Health{}, prometheus.NewRegistry()))
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	cases := []struct {
		name     string
		url      string
		header   http.Header
		code     int
		bodyPart string
	}{
		{"no token", ws + "/", nil, http.StatusUnauthorized, "a valid token is required"},
		{"wrong token", ws + "/?token=nope", nil, http.StatusUnauthorized, "a valid token is required"},
		{"foreign origin", ws + "/?token=s3cret", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "origin not allowed"},
		{"unknown browser", ws + "/?token=s3cret&browser=netscape", nil, http.StatusBadRequest, `unknown browser`},
		{"no worker: the seed's 503 after the timeout", ws + "/", http.Header{"Authorization": {"Bearer s3cret"}, "Origin": {"https://ok.example"}},
			http.StatusServiceUnavailable, `{"error":{"code":503,"message":"No available servers"}}`},
	}
	for _, c := range cases {
		_, resp, err := websocket.DefaultDialer.Dial(c.url, c.header)
		if err == nil || resp == nil {
			t.Fatalf("%s: connected (%v)", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.bodyPart) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, resp.StatusCode, body, c.code, c.bodyPart)
		}
	}
	// A plain GET is told what this endpoint is; /metrics is the seed's JSON.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "chromium.connect") {
		t.Errorf("plain GET: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(srv.URL + "/metrics?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(body)); got != `{"activeConnections": 0}` {
		t.Errorf("/metrics: %s", got)
	}
}
