package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawBackend answers every connection with resp (after reading one request
// head), then closes: for framings net/http would not produce on its own.
func rawBackend(t *testing.T, resp string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for range 100 { // bounded
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, resp)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoBackend answers with the method, the body it read and the headers
// it saw, chunked when the request asks for ?chunked.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/304" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Len", fmt.Sprint(r.ContentLength))
		if r.URL.Query().Has("chunked") {
			w.Header().Set("Trailer", "X-Sum")
			fmt.Fprintf(w, "%s ", r.Method)
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, "%s", body)
			w.Header().Set("X-Sum", fmt.Sprint(len(body)))
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFramings(t *testing.T) {
	be := echoBackend(t)
	px, _ := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	c := proxiedClient(px.URL)
	big := strings.Repeat("x", 300<<10)
	do := func(method, url, body string, chunked bool) (*http.Response, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // unknown length: sent chunked
		}
		req, _ := http.NewRequest(method, url, rd)
		if body == "" {
			req.Body = nil
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, url, err)
		}
		return resp, string(b)
	}
	if _, got := do("POST", be.URL+"/p", "hello", false); got != "POST hello" {
		t.Errorf("POST with Content-Length: %q", got)
	}
	if resp, got := do("POST", be.URL+"/p", big, true); got != "POST "+big || resp.Header.Get("X-Len") != "-1" {
		t.Errorf("POST chunked: %d bytes, upstream length %s", len(got), resp.Header.Get("X-Len"))
	}
	resp, got := do("PUT", be.URL+"/p?chunked", big, false)
	if got != "PUT "+big || resp.Trailer.Get("X-Sum") != fmt.Sprint(len(big)) {
		t.Errorf("chunked response with a trailer: %d bytes, trailer %v", len(got), resp.Trailer)
	}
	if resp, got := do("HEAD", be.URL+"/h", "", false); got != "" || resp.StatusCode != 200 {
		t.Errorf("HEAD: %d %q", resp.StatusCode, got)
	}
	if resp, got := do("GET", be.URL+"/304", "", false); got != "" || resp.StatusCode != 304 {
		t.Errorf("304: %d %q", resp.StatusCode, got)
	}
	// The connection still works after all of that.
	if _, got := do("GET", be.URL+"/again", "", false); got != "GET " {
		t.Errorf("after: %q", got)
	}
}

// rawExchange writes req on a fresh connection and reads responses until
// the connection closes or n responses came.
func rawExchange(t *testing.T, proxyURL, req string, n int, methods ...string) ([]*http.Response, []string) {
	t.Helper()
	conn, err := net.Dial("tcp", hostOf(proxyURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, req)
	br := bufio.NewReader(conn)
	var resps []*http.Response
	var bodies []string
	for i := range n {
		var r *http.Request
		if i < len(methods) {
			r = &http.Request{Method: methods[i]}
		}
		resp, err := http.ReadResponse(br, r)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	return resps, bodies
}

func TestConnectionHandling(t *testing.T) {
	be := echoBackend(t)
	untilEOF := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
	informational := rawBackend(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Private\r\nX-Private: 1\r\n\r\nok")
	px, _ := startProxy(t, Options{Allow: []string{hostOf(be.URL), untilEOF, informational}})
	h := hostOf(be.URL)

	// Pipelined requests are answered in order on one connection.
	resps, bodies := rawExchange(t, px.URL, "GET http://"+h+"/1 HTTP/1.1\r\nHost: "+h+"\r\n\r\nGET http://"+h+"/2 HTTP/1.1\r\nHost: "+h+"\r\n\r\n", 2)
	if bodies[0] != "GET " || bodies[1] != "GET " || resps[1].Close {
		t.Errorf("pipelined: %q %v", bodies, resps[1].Close)
	}
	// HTTP/1.0 without keep-alive: answered, then closed.
	resps, _ = rawExchange(t, px.URL, "GET http://"+h+"/x HTTP/1.0\r\n\r\n", 1)
	if !resps[0].Close {
		t.Error("an HTTP/1.0 client's connection was kept open")
	}
	// Expect: 100-continue is answered by the proxy, then the body flows.
	resps, bodies = rawExchange(t, px.URL, "POST http://"+h+"/e HTTP/1.1\r\nHost: "+h+"\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody", 2)
	if resps[0].StatusCode != 100 || bodies[1] != "POST body" {
		t.Errorf("100-continue: %d then %q", resps[0].StatusCode, bodies[1])
	}
	// A response that ends at the connection's end is passed on, closed.
	resps, bodies = rawExchange(t, px.URL, "GET http://"+untilEOF+"/ HTTP/1.1\r\nHost: "+untilEOF+"\r\n\r\n", 1)
	if bodies[0] != "until the end" || !resps[0].Close {
		t.Errorf("until EOF: %q close=%v", bodies[0], resps[0].Close)
	}
	// 1xx goes through; fields named in the response's Connection do not.
	resps, bodies = rawExchange(t, px.URL, "GET http://"+informational+"/ HTTP/1.1\r\nHost: "+informational+"\r\n\r\n", 2)
	if resps[0].StatusCode != 103 || bodies[1] != "ok" || resps[1].Header.Get("X-Private") != "" {
		t.Errorf("1xx: %d, %q, %v", resps[0].StatusCode, bodies[1], resps[1].Header)
	}
	// A header line longer than the read buffer but within the limit.
	long := strings.Repeat("v", 3500)
	_, bodies = rawExchange(t, px.URL, "GET http://"+h+"/l HTTP/1.1\r\nHost: "+h+"\r\nX-Long: "+long+"\r\n\r\n", 1)
	if bodies[0] != "GET " {
		t.Errorf("long header: %q", bodies[0])
	}
	// Both framings at once is refused (no smuggling), and the Host the
	// upstream sees is the target's, whatever the client sent.
	resps, _ = rawExchange(t, px.URL, "POST http://"+h+"/s HTTP/1.1\r\nHost: "+h+"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1)
	if resps[0].StatusCode != 400 {
		t.Errorf("CL and TE: %d, want 400", resps[0].StatusCode)
	}
	resps, _ = rawExchange(t, px.URL, "GET http://"+h+"/host HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n", 1)
	if got := resps[0].Header.Get("X-Host"); got != h {
		t.Errorf("upstream saw Host %q, want %q", got, h)
	}
	// A refused request with a body closes the connection (the body is
	// not read as a next request).
	resps, _ = rawExchange(t, px.URL, "POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 18\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", 1)
	if resps[0].StatusCode != 403 || !resps[0].Close {
		t.Errorf("refused with a body: %d close=%v", resps[0].StatusCode, resps[0].Close)
	}
}

func TestAsciiEqualFold(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{{"Host", "host", true}, {"HOST", "Host", true}, {"Hos", "Host", false}, {"Hosu", "Host", false}, {"Content-Length", "content-length", true}} {
		if got := asciiEqualFold(c.a, c.b); got != c.want {
			t.Errorf("%q %q: %v", c.a, c.b, got)
		}
		if got := asciiEqualFold([]byte(c.a), c.b); got != c.want {
			t.Errorf("bytes %q %q: %v", c.a, c.b, got)
		}
	}
}
