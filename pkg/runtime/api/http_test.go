package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// startAPI serves an API over an in-process Kafka (kfake) and a miniredis
// run store, its topics created and it ready.
func startAPI(t *testing.T, opts api.Options) (*httptest.Server, *runstate.Store) {
	t.Helper()
	return startAPIOn(t, testenv.Kafka(t), opts)
}

// startAPIOn is startAPI over the Kafka at brokers.
func startAPIOn(t *testing.T, brokers []string, opts api.Options) (*httptest.Server, *runstate.Store) {
	t.Helper()
	ctx := context.Background()
	runs, err := runstate.Open(ctx, miniredis.RunT(t).Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runs.Close() })
	if opts.Target, err = openlibrary.NewTarget("http://olsim.test:8081"); err != nil {
		t.Fatal(err)
	}
	opts.Brokers, opts.Runs, opts.Partitions = brokers, runs, 2
	a, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv, runs
}

// apiError is the API's JSON error body.
type apiError struct {
	Error struct {
		Code    int
		Message string
	}
}

// do sends a request and returns the status, headers and body.
func do(t *testing.T, method, url, contentType, auth, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// jsonError decodes b as the API's error body with code, or fails.
func jsonError(t *testing.T, h http.Header, b []byte, code int) apiError {
	t.Helper()
	var e apiError
	if h.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("body %q (%s) is not the API's JSON error with code %d", b, h.Get("Content-Type"), code)
	}
	return e
}

const seedBody = `{"name": "t", "seeds": ["OL9388A"], "max_depth": 0}`

// TestTokenGuardsEveryEndpoint: with a token, every endpoint but the
// probes answers 401 (JSON) without it, /metrics too unless MetricsPublic;
// with it they answer as usual. Without a token configured all is open.
func TestTokenGuardsEveryEndpoint(t *testing.T) {
	endpoints := []struct {
		method, path, body string
		code               int // with the token
		probe, metrics     bool
	}{
		{"GET", "/healthz", "", 200, true, false},
		{"GET", "/readyz", "", 200, true, false},
		{"GET", "/metrics", "", 200, false, true},
		{"GET", "/api/v1/runs", "", 200, false, false},
		{"GET", "/api/v1/runs/nope", "", 404, false, false}, // the run's 404, not the mux's
		{"GET", "/api/v1/lag", "", 200, false, false},
		{"POST", "/api/v1/runs", seedBody, 201, false, false},
		{"GET", "/nope", "", 404, false, false},
	}
	creds := []struct{ name, auth, query string }{
		{"none", "", ""},
		{"bearer", "Bearer s3cret", ""},
		{"query", "", "?token=s3cret"},
		{"wrong", "Bearer nope", ""},
		{"bare token", "s3cret", ""},
	}
	for _, token := range []string{"", "s3cret"} {
		for _, public := range []bool{false, true} {
			srv, _ := startAPI(t, api.Options{Token: token, MetricsPublic: public})
			for _, e := range endpoints {
				for _, c := range creds {
					t.Run(fmt.Sprintf("token=%q/public=%v/%s%s/%s", token, public, e.method, e.path, c.name), func(t *testing.T) {
						code, h, b := do(t, e.method, srv.URL+e.path+c.query, "application/json", c.auth, e.body)
						admitted := token == "" || e.probe || (public && e.metrics) || c.name == "bearer" || c.name == "query"
						if !admitted {
							if code != http.StatusUnauthorized {
								t.Fatalf("%d %s, want 401", code, b)
							}
							jsonError(t, h, b, http.StatusUnauthorized)
							return
						}
						if code != e.code {
							t.Errorf("%d %s, want %d", code, b, e.code)
						}
					})
				}
			}
		}
	}
}

// TestCreateRunRefusesNonJSON: a run must come as application/json (a
// cross-site form or text/plain POST is refused 415) and as one JSON
// object (trailing data is 400); a refused request enqueues nothing.
func TestCreateRunRefusesNonJSON(t *testing.T) {
	srv, runs := startAPI(t, api.Options{})
	cases := []struct {
		name, contentType, body string
		code                    int
		message                 string
	}{
		{"text/plain", "text/plain", seedBody, 415, "send the run as application/json"},
		{"text/plain with charset", "text/plain; charset=utf-8", seedBody, 415, "application/json"},
		{"form", "application/x-www-form-urlencoded", seedBody, 415, "application/json"},
		{"no Content-Type", "", seedBody, 415, "application/json"},
		{"malformed Content-Type", "application/json; =", seedBody, 415, "application/json"},
		{"trailing garbage", "application/json", seedBody + " x", 400, "trailing data after the JSON object"},
		{"two objects", "application/json", seedBody + seedBody, 400, "trailing data after the JSON object"},
		{"trailing brace", "application/json", seedBody + "}", 400, "trailing data after the JSON object"},
	}
	for _, c := range cases {
		code, h, b := do(t, "POST", srv.URL+"/api/v1/runs", c.contentType, "", c.body)
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, b, c.code)
			continue
		}
		if e := jsonError(t, h, b, c.code); !strings.Contains(e.Error.Message, c.message) {
			t.Errorf("%s: message %q lacks %q", c.name, e.Error.Message, c.message)
		}
	}
	if l, err := runs.List(context.Background(), 10); err != nil || len(l) != 0 {
		t.Fatalf("refused requests created %d runs (%v)", len(l), err)
	}
	// What is allowed: parameters on the media type, whitespace after.
	for _, c := range []struct{ contentType, body string }{
		{"application/json; charset=utf-8", seedBody},
		{"Application/JSON", seedBody + " \n\t\r\n"},
	} {
		if code, _, b := do(t, "POST", srv.URL+"/api/v1/runs", c.contentType, "", c.body); code != http.StatusCreated {
			t.Errorf("%q %q: %d %s, want 201", c.contentType, c.body, code, b)
		}
	}
}

// TestMuxErrorsAreJSON: the mux's own 404 and 405 come in the API's JSON
// shape, the 405 with its Allow header; a route's own 404 is untouched.
func TestMuxErrorsAreJSON(t *testing.T) {
	srv, _ := startAPI(t, api.Options{Token: "s3cret"})
	cases := []struct {
		method, path string
		code         int
		allow        string
		message      string
	}{
		{"GET", "/nope", 404, "", "GET /nope: no such endpoint"},
		{"GET", "/api/v2/runs", 404, "", "no such endpoint"},
		{"GET", "/api/v1/runs/r1", 404, "", `run "r1" not found`},
		{"DELETE", "/api/v1/runs", 405, "GET, HEAD, POST", "DELETE /api/v1/runs: method not allowed"},
		{"POST", "/api/v1/lag", 405, "GET, HEAD", "method not allowed (allowed: GET, HEAD)"},
		{"PUT", "/api/v1/runs/r1", 405, "GET, HEAD", "method not allowed"},
	}
	for _, c := range cases {
		code, h, b := do(t, c.method, srv.URL+c.path, "", "Bearer s3cret", "")
		if code != c.code || h.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, code, h.Get("Allow"), c.code, c.allow)
		}
		if e := jsonError(t, h, b, c.code); !strings.Contains(e.Error.Message, c.message) {
			t.Errorf("%s %s: message %q lacks %q", c.method, c.path, e.Error.Message, c.message)
		}
	}
}

// TestCreateRunSendsTheToken: the client sends its token as Bearer; the
// API refuses it without.
func TestCreateRunSendsTheToken(t *testing.T) {
	srv, _ := startAPI(t, api.Options{Token: "s3cret"})
	req := api.RunRequest{Seeds: []string{"OL9388A"}}
	run, err := api.CreateRun(context.Background(), srv.URL, "s3cret", req)
	if err != nil || run.ID == "" {
		t.Fatalf("CreateRun with the token: %v %v", run, err)
	}
	code, _, b := do(t, "GET", srv.URL+"/api/v1/runs/"+run.ID, "", "Bearer s3cret", "")
	var got runstate.Run
	if code != http.StatusOK || json.Unmarshal(b, &got) != nil || got.ID != run.ID {
		t.Errorf("GET /api/v1/runs/%s: %d %s", run.ID, code, b)
	}
	_, err = api.CreateRun(context.Background(), srv.URL, "", req)
	var refused *api.RefusedError
	if err == nil || errors.As(err, &refused) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "a valid token is required") {
		t.Errorf("CreateRun without the token: %v, want the API's 401", err)
	}
}

// TestCreateRunAfterTopicsLost: a broker that lost the topics after the
// API created them (the in-memory stand-in restarted under it) gets them
// again, and the run's seeds reach the frontier once each.
func TestCreateRunAfterTopicsLost(t *testing.T) {
	ctx := context.Background()
	brokers := testenv.Kafka(t)
	srv, _ := startAPIOn(t, brokers, api.Options{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topics.Frontier); err != nil {
		t.Fatal(err)
	}
	req := api.RunRequest{Seeds: []string{"OL9388A", "OL17732W"}}
	if _, err := api.CreateRun(ctx, srv.URL, "", req); err != nil {
		t.Fatalf("CreateRun after the topics were deleted: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Frontier)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != int64(len(req.Seeds)) {
		t.Errorf("the frontier holds %d records, want the %d seeds once each", n, len(req.Seeds))
	}
}
