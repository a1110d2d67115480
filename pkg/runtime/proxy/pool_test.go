package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestStalePoolRetriesOnAFreshConnection: every pooled upstream connection
// has been closed by the destination (idle longer than it keeps them, or
// carried over by a reload); a request fails on the first and must be
// retried on a new connection, not on the next stale one.
func TestStalePoolRetriesOnAFreshConnection(t *testing.T) {
	const parallel = 3
	var gate sync.WaitGroup
	gate.Add(parallel)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gate" { // hold until all are in: each on its own upstream connection
			gate.Done()
			gate.Wait()
		}
		fmt.Fprint(w, "ok")
	}))
	defer be.Close()
	ps, _ := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	proxyAddr := hostOf(ps.URL)
	get := func(path string) (int, error) {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s%s HTTP/1.1\r\nHost: %s\r\n\r\n", be.URL, path, hostOf(be.URL))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			if code, err := get("/gate"); code != http.StatusOK {
				t.Errorf("filling the pool: %d %v", code, err)
			}
		})
	}
	wg.Wait()
	// The proxy pools the three upstream connections; the destination
	// closes them all.
	be.CloseClientConnections()
	if code, err := get("/after"); code != http.StatusOK {
		t.Errorf("a request after the destination closed the pooled connections: %d %v, want 200 on a fresh connection", code, err)
	}
}
