package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingBackend keeps every request body it got whole.
type recordingBackend struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	b := &recordingBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			b.mu.Lock()
			b.bodies = append(b.bodies, r.Method+" "+string(body))
			b.mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// answer sends raw on a fresh connection and returns the first status the
// proxy answers, or 0 when it closes without one.
func answer(t *testing.T, proxyURL, raw string) int {
	code, _ := answerBody(t, proxyURL, raw)
	return code
}

// answerBody is answer with the response's body.
func answerBody(t *testing.T, proxyURL, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", hostOf(proxyURL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStrictFraming: requests another hop could read differently are
// refused by the proxy itself (its own 400, not the destination's, which
// would mean it forwarded them), and none reaches the destination as a
// request it accepts.
func TestStrictFraming(t *testing.T) {
	be := newRecordingBackend(t)
	px, _ := startProxy(t, Options{Allow: []string{hostOf(be.URL)}})
	h := hostOf(be.URL)
	head := "POST http://" + h + "/x HTTP/1.1\r\nHost: " + h + "\r\n"
	for _, tc := range []struct {
		name, raw string
	}{
		{"bare CR in a value", "GET http://" + h + "/x HTTP/1.1\r\nHost: " + h + "\r\nX-Foo: a\rContent-Length: 30\r\n\r\n"},
		{"NUL in a value", "GET http://" + h + "/x HTTP/1.1\r\nHost: " + h + "\r\nX-Foo: a\x00b\r\n\r\n"},
		{"control character in a name", "GET http://" + h + "/x HTTP/1.1\r\nHost: " + h + "\r\nX\x01Foo: a\r\n\r\n"},
		{"separator in a name", "GET http://" + h + "/x HTTP/1.1\r\nHost: " + h + "\r\nX(Foo): a\r\n\r\n"},
		{"control character in the target", "GET http://" + h + "/x\x00y HTTP/1.1\r\nHost: " + h + "\r\n\r\n"},
		{"signed chunk size", head + "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"},
		{"hex prefix in a chunk size", head + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
		{"chunk data without CRLF", head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
		{"chunk size line ended by LF", head + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"},
		{"bare CR in a chunk extension", head + "Transfer-Encoding: chunked\r\n\r\n5;a=b\rc\r\nhello\r\n0\r\n\r\n"},
		{"NUL in a trailer", head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\x00\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := answerBody(t, px.URL, tc.raw); code != http.StatusBadRequest || !strings.HasPrefix(body, "proxy: ") {
				t.Errorf("answered %d %q: want the proxy's own 400", code, body)
			}
		})
	}
	be.mu.Lock()
	for _, b := range be.bodies {
		if strings.Contains(b, "hello") {
			t.Errorf("the destination accepted a request with a malformed body: %q", b)
		}
	}
	be.mu.Unlock()
	// Well-framed requests still pass, chunk extensions and trailers too.
	if code := answer(t, px.URL, head+"Transfer-Encoding: chunked\r\n\r\n5 ;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"); code != 200 {
		t.Errorf("a well-framed chunked request: %d", code)
	}
}

// TestUpstreamClosedByRequestIsNotReused: after a request that asked for
// Connection: close, the proxy does not put that upstream connection back
// in its pool, even when the destination's answer does not repeat the
// close (it then closes the connection, as it was asked): the next
// request, one with a body that cannot be retried, gets a fresh one.
func TestUpstreamClosedByRequestIsNotReused(t *testing.T) {
	// Answers without Connection: close, then closes.
	be := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	px, _ := startProxy(t, Options{Allow: []string{be}})
	if code := answer(t, px.URL, "GET http://"+be+"/a HTTP/1.1\r\nHost: "+be+"\r\nConnection: close\r\n\r\n"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	// Let the destination's close reach the proxy (this only makes reuse of a
	// dead connection show; the proxy must not reuse it at any time).
	time.Sleep(100 * time.Millisecond)
	if code := answer(t, px.URL, "POST http://"+be+"/b HTTP/1.1\r\nHost: "+be+"\r\nContent-Length: 4\r\n\r\nbody"); code != 200 {
		t.Errorf("a request with a body after a Connection: close: %d (a dead pooled connection was used)", code)
	}
}

// FuzzReadRequest: whatever bytes a client sends, the parser does not
// panic, and a request it accepts has a token method and header lines free
// of CR, LF and NUL.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\nabc",
		"GET http://a/ HTTP/1.1\r\nX-Foo: a\rContent-Length: 30\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"GET http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	s := newConnServer(nil, 4<<10)
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := &clientConn{br: bufio.NewReaderSize(bytes.NewReader(data), 4<<10)}
		req, status, err := s.readRequest(cc)
		if err != nil {
			if status != 0 && status != http.StatusBadRequest && status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d for %q", status, data)
			}
			return
		}
		if !isToken([]byte(req.method)) {
			t.Fatalf("accepted method %q", req.method)
		}
		if req.chunked && req.contentLength >= 0 {
			t.Fatalf("accepted both framings: %q", data)
		}
		for _, l := range req.lines {
			if line := cc.hdr[l[0]:l[1]]; bytes.ContainsAny(line, "\r\n\x00") {
				t.Fatalf("accepted header line %q", line)
			}
		}
	})
}
