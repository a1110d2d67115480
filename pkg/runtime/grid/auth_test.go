package grid

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// TestTokenGuardsEveryEndpoint: with a token, only the probes answer
// without it, and with MetricsPublic the two metrics endpoints too; a
// refusal is the grid's JSON 401. Without a token everything is open.
func TestTokenGuardsEveryEndpoint(t *testing.T) {
	endpoints := []struct {
		path    string
		probe   bool // kubelet's: never needs the token
		metrics bool // open with MetricsPublic
	}{
		{"/healthz", true, false},
		{"/readyz", true, false},
		{"/metrics", false, true},
		{"/metrics/prometheus", false, true},
		{"/api/v1/workers", false, false},
	}
	creds := []struct {
		name   string
		header string
		query  string
		valid  bool
	}{
		{"none", "", "", false},
		{"bearer", "Bearer s3cret", "", true},
		{"query", "", "?token=s3cret", true},
		{"wrong bearer", "Bearer nope", "", false},
		{"bare token", "s3cret", "", false},
		{"basic", "Basic s3cret", "", false},
	}
	for _, token := range []string{"", "s3cret"} {
		for _, public := range []bool{false, true} {
			g, err := New(Options{Registry: gridregistry.NewMemory(gridregistry.DefaultPolicy), Token: token, MetricsPublic: public})
			if err != nil {
				t.Fatal(err)
			}
			health := &serve.Health{}
			health.SetReady(true)
			h := g.Handler(health, prometheus.NewRegistry())
			for _, e := range endpoints {
				for _, c := range creds {
					t.Run(fmt.Sprintf("token=%q/public=%v%s/%s", token, public, e.path, c.name), func(t *testing.T) {
						r := httptest.NewRequest("GET", e.path+c.query, nil)
						if c.header != "" {
							r.Header.Set("Authorization", c.header)
						}
						w := httptest.NewRecorder()
						h.ServeHTTP(w, r)
						open := token == "" || e.probe || (public && e.metrics) || c.valid
						if open {
							if w.Code != http.StatusOK {
								t.Errorf("%d %s, want 200", w.Code, w.Body)
							}
							return
						}
						var body struct {
							Error struct {
								Code    int
								Message string
							}
						}
						if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/json" ||
							json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != http.StatusUnauthorized || body.Error.Message != unauthorized {
							t.Errorf("%d %q %s, want the grid's JSON 401", w.Code, w.Header().Get("Content-Type"), w.Body)
						}
					})
				}
			}
		}
	}
}
