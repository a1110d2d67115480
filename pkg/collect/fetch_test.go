package collect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/serve"
)

// TestFetchRunSendsTheToken: FetchRun sends its token as Bearer, and a
// refusal names the API's own message.
func TestFetchRunSendsTheToken(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !serve.Authorized(r, "s3cret") {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": {"code": 401, "message": "a valid token is required"}}`))
			return
		}
		run := runstate.Run{ID: "r1"}
		if r.URL.Path == "/api/v1/runs" {
			json.NewEncoder(w).Encode([]runstate.Run{run})
			return
		}
		json.NewEncoder(w).Encode(run)
	}))
	defer api.Close()
	cases := []struct {
		name, token, id, wantErr string
	}{
		{"newest with the token", "s3cret", "", ""},
		{"by id with the token", "s3cret", "r1", ""},
		{"newest without", "", "", "HTTP 401: a valid token is required"},
		{"by id with a wrong one", "nope", "r1", "HTTP 401: a valid token is required"},
	}
	for _, c := range cases {
		run, err := FetchRun(context.Background(), api.URL, c.token, c.id)
		switch {
		case c.wantErr == "" && (err != nil || run.ID != "r1"):
			t.Errorf("%s: %v %v, want run r1", c.name, run, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.wantErr)
		}
	}
}

// TestWaitDrainedRidesOutARestart: while the control API does not answer
// (a 503, a connection dropped mid-request, as when its pod restarts)
// WaitDrained reports it and asks again; once the API answers it goes on
// to the drained run. An answer (404) ends the wait at once.
func TestWaitDrainedRidesOutARestart(t *testing.T) {
	var polls int
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/lag" {
			w.Write([]byte(`{"groups": {}}`))
			return
		}
		polls++
		switch {
		case strings.HasSuffix(r.URL.Path, "/gone"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": {"code": 404, "message": "run gone not found"}}`))
		case polls == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case polls == 2 || polls == 3: // twice: Go's transport retries once on a reused connection
			c, _, _ := w.(http.Hijacker).Hijack() // the pod went away mid-request
			c.Close()
		case polls == 4:
			json.NewEncoder(w).Encode(runstate.Run{ID: "r1", State: runstate.StateRunning})
		default:
			json.NewEncoder(w).Encode(runstate.Run{ID: "r1", State: runstate.StateDrained})
		}
	}))
	defer api.Close()
	var silent []error
	answered := 0
	run, err := WaitDrained(context.Background(), api.URL, "", "r1", time.Millisecond, func(p Progress) {
		if p.Err != nil {
			silent = append(silent, p.Err)
		} else {
			answered++
		}
	})
	var se *statusError
	if err != nil || run.State != runstate.StateDrained || len(silent) < 2 || answered != 2 ||
		!errors.As(silent[0], &se) || se.code != 503 || !transient(silent[len(silent)-1]) {
		t.Errorf("WaitDrained: %v %v, silent polls %v and %d answered, want a 503, a dropped connection, then drained after 2 answers", run, err, silent, answered)
	}
	if _, err := WaitDrained(context.Background(), api.URL, "", "gone", time.Millisecond, func(Progress) {}); err == nil || !strings.Contains(err.Error(), "HTTP 404: run gone not found") {
		t.Errorf("WaitDrained of a missing run: %v, want the API's 404 at once", err)
	}
}
