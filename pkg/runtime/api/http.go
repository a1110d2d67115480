package api

import (
	"net/http"
	"strings"

	"github.com/crawlctl/crawlctl/pkg/serve"
)

// unauthorized is the message of a 401.
const unauthorized = "a valid token is required: send Authorization: Bearer <token> (the API's --token or CRAWLCTL_TOKEN)"

// Handler serves the API: the token checked (Options.Token), and every
// error in the API's JSON shape, the mux's own 404 and 405 included.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if !s.public(pattern) && !serve.Authorized(r, s.opts.Token) {
		writeError(w, http.StatusUnauthorized, "", "%s", unauthorized)
		return
	}
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // it, not h, sets the path values ({id})
		return
	}
	// No route: the mux answers 404, or 405 with Allow. Keep its status
	// and Allow header, say it in JSON.
	sw := &statusWriter{header: http.Header{}}
	h.ServeHTTP(sw, r)
	switch allow := sw.header.Get("Allow"); {
	case sw.code == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", allow)
		writeError(w, sw.code, "", "%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow)
	case sw.code == http.StatusNotFound:
		writeError(w, sw.code, "", "%s %s: no such endpoint (see /api/v1/runs, /api/v1/runs/{id}, /api/v1/lag, /metrics)", r.Method, r.URL.Path)
	default:
		writeError(w, sw.code, "", "%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(sw.code)))
	}
}

// public reports whether the endpoint of a mux pattern answers without
// the token: the probes always, /metrics with MetricsPublic.
func (s *Server) public(pattern string) bool {
	switch pattern {
	case "GET /healthz", "GET /readyz":
		return true
	case "GET /metrics":
		return s.opts.MetricsPublic
	}
	return false
}

// statusWriter keeps the status and headers of a response and drops its
// body.
type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) Header() http.Header { return w.header }
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *statusWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
