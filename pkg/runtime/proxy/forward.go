package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handle answers one request on cc. keep says whether the connection may
// carry another; hijacked, that it became a tunnel.
func (p *Proxy) handle(cc *clientConn, req request) (keep, hijacked bool) {
	if req.method == http.MethodConnect {
		return p.connect(cc, req)
	}
	hasBody := req.chunked || req.contentLength > 0
	refuse := func(code int, reason, msg string) (bool, bool) {
		p.m.refused.WithLabelValues(reason).Inc()
		p.countRequest(req.method, code)
		writeError(cc.bw, code, msg, hasBody || req.close)
		return !hasBody && !req.close, false // an unread body would be read as the next request
	}
	if !strings.HasPrefix(req.target, "http://") && !strings.HasPrefix(req.target, "HTTP://") {
		if strings.Contains(req.target, "://") {
			return refuse(http.StatusBadRequest, "scheme", "only http:// is proxied in absolute form; use CONNECT for https")
		}
		if req.method == http.MethodGet && req.target == "/healthz" {
			p.countRequest(req.method, http.StatusOK)
			cc.bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nok\n")
			return !hasBody && !req.close, false
		}
		return refuse(http.StatusBadRequest, "not_proxy_request", "this is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT")
	}
	rest := req.target[len("http://"):]
	authority, path := rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, path = rest[:i], rest[i:]
		if path[0] == '?' {
			path = "/" + path
		}
	}
	if authority == "" || strings.ContainsAny(authority, "@ ") {
		return refuse(http.StatusBadRequest, "malformed", "bad host in "+req.target)
	}
	host, port := authority, "80"
	if h, pt, err := net.SplitHostPort(authority); err == nil {
		host, port = h, pt
	}
	if ok, why := p.allowed(host, port, "http"); !ok {
		return refuse(http.StatusForbidden, "destination", why)
	}
	if req.expectContinue && hasBody {
		cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := cc.bw.Flush(); err != nil {
			return false, false
		}
	}
	buf := p.pool.get()
	defer p.pool.put(buf)
	code, keepUp, err := p.forward(cc, req, net.JoinHostPort(host, port), authority, path, *buf)
	var bad *requestBodyError
	if errors.As(err, &bad) && code == 0 { // the client's framing, not the destination's
		return refuse(http.StatusBadRequest, "malformed", "request body: "+bad.err.Error())
	}
	if err != nil {
		if code == 0 { // nothing reached the client yet: answer the error
			code = http.StatusBadGateway
			if isTimeout(err) {
				code = http.StatusGatewayTimeout
			}
			p.opts.Log.Debug("upstream error", "host", authority, "err", err)
			p.countRequest(req.method, code)
			writeError(cc.bw, code, "upstream "+authority+": "+err.Error(), true)
		}
		return false, false // a cut response or an unknown request body: close
	}
	p.countRequest(req.method, code)
	return keepUp, false
}

func (p *Proxy) countRequest(method string, code int) { p.m.requests.inc(method, code) }

// forward sends the request upstream and streams the response to the
// client. code is the status sent to the client (0: none yet); keep says
// whether the client connection can go on.
func (p *Proxy) forward(cc *clientConn, req request, addr, authority, path string, buf []byte) (code int, keep bool, err error) {
	hasBody := req.chunked || req.contentLength > 0
	for attempt := 0; ; attempt++ {
		// A retry dials afresh: the next pooled connection may be as
		// stale as the one that failed (a pool idle for longer than the
		// destination keeps connections, or handed over by a reload).
		c, reused, err := p.up.get(context.Background(), addr, p.opts.DialTimeout, attempt > 0)
		if err != nil {
			return 0, false, err
		}
		c.SetDeadline(time.Now().Add(p.opts.ResponseHeaderTimeout))
		err = p.writeRequest(c.bw, cc, req, authority, path, buf)
		if err == nil {
			err = c.bw.Flush()
		}
		var resp response
		if err == nil {
			resp, err = readResponseHead(c.br, cc.resp[:0])
		}
		if err != nil {
			c.Close()
			if reused && attempt == 0 && !hasBody {
				continue // a pooled connection the destination had closed
			}
			return 0, false, err
		}
		for resp.code >= 100 && resp.code < 200 && resp.code != http.StatusSwitchingProtocols {
			cc.bw.Write(resp.head) // informational: pass it on, read on
			if resp, err = readResponseHead(c.br, cc.resp[:0]); err != nil {
				c.Close()
				return 0, false, err
			}
		}
		if resp.code == http.StatusSwitchingProtocols {
			c.Close()
			return 0, false, errors.New("the destination switched protocols, which this proxy does not relay outside CONNECT")
		}
		cc.resp = resp.head // keep the grown buffer
		c.SetDeadline(time.Time{})
		if resp.code == http.StatusTooManyRequests {
			p.m.upstream429.Inc()
		}
		noBody := req.method == http.MethodHead || resp.code == http.StatusNoContent || resp.code == http.StatusNotModified
		closeClient := req.close
		untilEOF := !noBody && !resp.chunked && resp.contentLength < 0
		if untilEOF {
			closeClient = true // the end of the body is the end of the connection
		}
		// Status line and headers, the hop-by-hop ones left out.
		cc.bw.WriteString("HTTP/1.1 ")
		cc.bw.WriteString(resp.status)
		cc.bw.WriteString("\r\n")
		for _, l := range resp.lines {
			cc.bw.Write(resp.head[l[0]:l[1]])
			cc.bw.WriteString("\r\n")
		}
		switch {
		case resp.chunked && !noBody:
			cc.bw.WriteString("Transfer-Encoding: chunked\r\n")
		case !resp.chunked && resp.contentLength >= 0:
			cc.bw.WriteString("Content-Length: ")
			cc.bw.WriteString(strconv.FormatInt(resp.contentLength, 10))
			cc.bw.WriteString("\r\n")
		}
		if closeClient {
			cc.bw.WriteString("Connection: close\r\n")
		}
		cc.bw.WriteString("\r\n")
		var n int64
		switch {
		case noBody:
		case resp.chunked:
			n, err = copyChunked(cc.bw, c.br, buf)
		case resp.contentLength >= 0:
			n, err = io.CopyBuffer(cc.bw, io.LimitReader(c.br, resp.contentLength), buf)
			if err == nil && n != resp.contentLength {
				err = io.ErrUnexpectedEOF
			}
		default:
			n, err = io.CopyBuffer(cc.bw, c.br, buf)
		}
		p.m.bytesDown.Add(float64(n))
		if err != nil || untilEOF || resp.close || req.close {
			c.Close() // req.close: the request told the destination to close it
		} else {
			p.up.put(addr, c)
		}
		if err != nil {
			return resp.code, false, err // the client must not take a cut body for a whole one
		}
		return resp.code, !closeClient, nil
	}
}

// writeRequest writes the request in origin form with the client's
// end-to-end headers, then its body.
func (p *Proxy) writeRequest(w *bufio.Writer, cc *clientConn, req request, authority, path string, buf []byte) error {
	w.WriteString(req.method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(authority)
	w.WriteString("\r\n")
	for _, l := range req.lines {
		w.Write(cc.hdr[l[0]:l[1]])
		w.WriteString("\r\n")
	}
	switch {
	case req.chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.contentLength >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.contentLength, 10))
		w.WriteString("\r\n")
	}
	if req.close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	switch {
	case req.chunked:
		n, err := copyChunked(w, cc.br, buf)
		p.m.bytesUp.Add(float64(n))
		if errors.Is(err, errChunk) {
			return &requestBodyError{err}
		}
		return err
	case req.contentLength > 0:
		n, err := io.CopyBuffer(w, io.LimitReader(cc.br, req.contentLength), buf)
		p.m.bytesUp.Add(float64(n))
		if err == nil && n != req.contentLength {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// requestBodyError is a request body the client framed wrongly, found while
// it was being sent on: answered 400, not as the destination's failure.
type requestBodyError struct{ err error }

func (e *requestBodyError) Error() string { return e.err.Error() }
func (e *requestBodyError) Unwrap() error { return e.err }

// response is an upstream response head.
type response struct {
	status        string // "200 OK"
	code          int
	head          []byte
	lines         [][2]int // end-to-end header lines in head
	contentLength int64
	chunked       bool
	close         bool
}

// readResponseHead reads a status line and headers into scratch.
func readResponseHead(br *bufio.Reader, scratch []byte) (response, error) {
	r := response{contentLength: -1, head: scratch}
	var connTokens [][]byte
	for i := 0; ; i++ {
		start := len(r.head)
		for {
			frag, err := br.ReadSlice('\n')
			r.head = append(r.head, frag...)
			if len(r.head) > 64<<10 {
				return r, errors.New("response header block too large")
			}
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return r, err
			}
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(r.head[start:], []byte("\n")), []byte("\r"))
		if i == 0 {
			proto, status, ok := bytes.Cut(line, []byte(" "))
			if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(status) < 3 {
				return r, fmt.Errorf("malformed status line %q", line)
			}
			code, err := strconv.Atoi(string(status[:3]))
			if err != nil {
				return r, fmt.Errorf("malformed status line %q", line)
			}
			r.status, r.code = string(status), code
			if string(proto) == "HTTP/1.0" {
				r.close = true
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validField(name, value) {
			return r, fmt.Errorf("malformed header line %q from the destination", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return r, errors.New("bad Content-Length from the destination")
			}
			r.contentLength = n
			continue // written again from the parsed value
		case asciiEqualFold(name, "Transfer-Encoding"):
			r.chunked = bytes.HasSuffix(bytes.ToLower(value), []byte("chunked"))
			continue
		case asciiEqualFold(name, "Connection"):
			var closeConn, keepAlive bool
			closeConn, keepAlive, connTokens = connectionTokens(value, connTokens)
			switch {
			case closeConn:
				r.close = true
			case keepAlive:
				r.close = false
			}
			continue
		}
		if isHop(name) {
			continue
		}
		r.lines = append(r.lines, [2]int{start, start + len(line)})
	}
	if r.chunked {
		r.contentLength = -1
	}
	r.lines = dropNamed(r.head, r.lines, connTokens)
	return r, nil
}

// connect opens a tunnel to an allowed host:port.
func (p *Proxy) connect(cc *clientConn, req request) (keep, hijacked bool) {
	host, port, err := net.SplitHostPort(req.target)
	if err != nil {
		p.m.refused.WithLabelValues("malformed").Inc()
		p.countRequest(req.method, http.StatusBadRequest)
		writeError(cc.bw, http.StatusBadRequest, "CONNECT needs host:port", true)
		return false, false
	}
	if ok, why := p.allowed(host, port, ""); !ok {
		p.m.refused.WithLabelValues("destination").Inc()
		p.countRequest(req.method, http.StatusForbidden)
		writeError(cc.bw, http.StatusForbidden, why, true)
		return false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DialTimeout)
	up, err := p.dial(ctx, "tcp", req.target)
	cancel()
	if err != nil {
		p.countRequest(req.method, http.StatusBadGateway)
		writeError(cc.bw, http.StatusBadGateway, "dialing "+req.target+": "+err.Error(), true)
		return false, false
	}
	p.countRequest(req.method, http.StatusOK)
	cc.bw.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n")
	if err := cc.bw.Flush(); err != nil {
		up.Close()
		return false, false
	}
	if n := cc.br.Buffered(); n > 0 { // bytes the client sent early
		early, _ := cc.br.Peek(n)
		if _, err := up.Write(early); err != nil {
			up.Close()
			return false, false
		}
	}
	cc.SetDeadline(time.Time{})
	p.track(cc.Conn, up)
	return false, true
}
