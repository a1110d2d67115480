package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// upstreams is a keep-alive pool of connections to destinations. A request
// is written and its response read in the handler's own goroutine: no
// hand-offs to reader and writer goroutines as in http.Transport, which on
// small responses cost more than the proxying itself.
type upstreams struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int // per destination

	mu   sync.Mutex
	idle map[string][]*upConn
}

type upConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// get takes an idle connection to addr, or dials one within timeout.
func (u *upstreams) get(ctx context.Context, addr string, timeout time.Duration) (*upConn, bool, error) {
	u.mu.Lock()
	if l := u.idle[addr]; len(l) > 0 {
		c := l[len(l)-1]
		u.idle[addr] = l[:len(l)-1]
		u.mu.Unlock()
		return c, true, nil
	}
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := u.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &upConn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

func (u *upstreams) put(addr string, c *upConn) {
	u.mu.Lock()
	if len(u.idle[addr]) < u.maxIdle {
		u.idle[addr] = append(u.idle[addr], c)
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	c.Close()
}

// closeIdle closes every pooled connection.
func (u *upstreams) closeIdle() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for addr, l := range u.idle {
		for _, c := range l {
			c.Close()
		}
		delete(u.idle, addr)
	}
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1), with the
// fields named by Connection.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHop(h http.Header) {
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = textprotoKey(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func textprotoKey(s string) string { return http.CanonicalHeaderKey(strings.TrimSpace(s)) }

// upstreamError is a failure before any byte reached the client.
type upstreamError struct {
	err     error
	timeout bool
}

func (e *upstreamError) Error() string { return e.err.Error() }

// forward sends r to its destination and streams the answer to w. A
// connection from the pool that turns out dead before the response starts is
// replaced once (the request had no body, or it had not been read).
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, buf []byte) error {
	addr := r.URL.Host
	if r.URL.Port() == "" {
		addr = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	// The incoming header is this request's own: strip it in place.
	out := &http.Request{
		Method: r.Method, URL: r.URL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header, Body: r.Body, ContentLength: r.ContentLength, Host: r.Host,
		TransferEncoding: r.TransferEncoding,
	}
	removeHop(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // do not add Go's
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := p.up.get(r.Context(), addr, p.opts.DialTimeout)
		if err != nil {
			return &upstreamError{err: err, timeout: isTimeout(err)}
		}
		c.SetDeadline(time.Now().Add(p.opts.ResponseHeaderTimeout))
		err = out.Write(c.bw) // origin form, as to a server
		if err == nil {
			err = c.bw.Flush()
		}
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(c.br, out)
		}
		if err != nil {
			c.Close()
			if reused && attempt == 0 && (out.Body == nil) && !errors.Is(err, context.Canceled) {
				continue // a pooled connection the destination had closed
			}
			return &upstreamError{err: err, timeout: isTimeout(err)}
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			p.m.upstream429.Inc()
		}
		c.SetDeadline(time.Time{})
		h := w.Header()
		for k, v := range resp.Header {
			h[k] = v
		}
		removeHop(h)
		if resp.ContentLength >= 0 && r.Method != http.MethodHead {
			h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		}
		w.WriteHeader(resp.StatusCode)
		_, cerr := io.CopyBuffer(w, resp.Body, buf)
		resp.Body.Close()
		if cerr == nil && !resp.Close && !out.Close {
			p.up.put(addr, c)
		} else {
			c.Close()
		}
		if cerr != nil {
			panic(http.ErrAbortHandler) // the client must not take a cut body for a whole one
		}
		return nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
