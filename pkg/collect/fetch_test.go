package collect

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
