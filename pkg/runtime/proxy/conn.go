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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/hotrestart"
)

// connServer serves the proxy's client connections itself: a loop per
// connection that reads a request, writes it upstream and streams the
// answer back, with no net/http server in between. net/http's per-request
// work (header maps, a response writer, a background read, two buffered
// writers) was half the proxy's CPU; this loop parses only what a forward
// proxy must understand and passes the rest through as bytes.
//
// Drain loses no request, also for clients that never retry: a connection
// is closed only after a response that said "Connection: close", or once it
// has been idle for hotrestart.IdleGrace with nothing sent. Closing a keep-alive
// connection the moment it goes idle would race the client's next request,
// already on the wire (wrk counts those as read errors; Go's Transport
// hides them by retrying). Nothing is cut before the drain deadline.
type connServer struct {
	p                 *Proxy
	maxHeaderBytes    int
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	writeTimeout      time.Duration

	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	ln       net.Listener
	draining atomic.Bool
	// idleUntil is, once draining, when idle connections are closed
	// (UnixNano): until then each may still send its next request, which
	// is answered with Connection: close.
	idleUntil atomic.Int64
	// handoff, once set, is the successor's: each connection goes to it
	// at its next request boundary.
	handoff atomic.Pointer[hotrestart.Handoff]
}

// Connection states, for the drain.
const (
	stateNew int32 = iota // accepted, first request not answered yet
	stateActive
	stateIdle
)

type clientConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// mu orders the loop's leaving idle against HandOff waking an idle
	// connection (a past read deadline), so that the wake never lands on a
	// request being read.
	mu    sync.Mutex
	state atomic.Int32
	// graced is set once Drain gave the connection its idle deadline.
	graced atomic.Bool
	// hdr holds the current request's header block, resp the upstream
	// response's (both reused).
	hdr, resp []byte
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newConnServer(p *Proxy, maxHeaderBytes int) *connServer {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = 32 << 10
	}
	return &connServer{p: p, maxHeaderBytes: maxHeaderBytes, readHeaderTimeout: 10 * time.Second,
		readTimeout: 2 * time.Minute, idleTimeout: 90 * time.Second, writeTimeout: 10 * time.Minute, conns: map[*clientConn]struct{}{}}
}

// Serve accepts until the listener is closed (http.ErrServerClosed once
// draining).
func (s *connServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		cc := &clientConn{Conn: c}
		s.mu.Lock()
		s.conns[cc] = struct{}{}
		s.mu.Unlock()
		go s.serve(cc, false)
	}
}

// Drain lets every connection finish the request it is in and closes the
// idle ones, until none is busy or ctx ends (then it closes the rest).
func (s *connServer) Drain(ctx context.Context) error {
	until := time.Now().Add(hotrestart.IdleGrace)
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	s.idleUntil.Store(until.UnixNano())
	s.draining.Store(true)
	return s.untilGone(ctx, func(cc *clientConn) {
		if cc.state.Load() == stateIdle && !cc.graced.Swap(true) {
			// Idle since before the drain: its loop closes it if no
			// request comes by then; one that comes is answered with
			// Connection: close. (Connections going idle from now on
			// take this deadline themselves.)
			cc.SetReadDeadline(until)
		}
	})
}

// untilGone calls visit on every connection every 5 ms until none is left,
// or closes the rest when ctx ends.
func (s *connServer) untilGone(ctx context.Context, visit func(*clientConn)) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		for cc := range s.conns {
			visit(cc)
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for cc := range s.conns {
				cc.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// idleDeadline is how long a connection between requests waits for the
// next one: the idle timeout, or once draining the drain's grace.
func (s *connServer) idleDeadline() time.Time {
	d := time.Now().Add(s.idleTimeout)
	if s.draining.Load() {
		if until := time.Unix(0, s.idleUntil.Load()); until.Before(d) {
			d = until
		}
	}
	return d
}

func (s *connServer) forget(cc *clientConn) {
	s.mu.Lock()
	delete(s.conns, cc)
	s.mu.Unlock()
}

// serve runs one connection's request loop; adopted, the connection was
// handed over between two requests and starts idle.
func (s *connServer) serve(cc *clientConn, adopted bool) {
	cc.br = readers.Get().(*bufio.Reader)
	cc.br.Reset(cc.Conn)
	cc.bw = writers.Get().(*bufio.Writer)
	cc.bw.Reset(cc.Conn)
	hijacked := false // or handed over
	defer func() {
		s.forget(cc)
		if !hijacked {
			cc.Close()
		}
		cc.br.Reset(nil)
		readers.Put(cc.br)
		cc.bw.Reset(nil)
		writers.Put(cc.bw)
	}()
	served := 0
	if adopted {
		served = 1
	}
	for ; ; served++ {
		if served > 0 {
			cc.state.Store(stateIdle)
			if h := s.handoff.Load(); h != nil && s.handOver(h, cc) {
				hijacked = true
				return
			}
			// Draining, Drain's ticks keep this at its grace deadline.
			cc.SetReadDeadline(s.idleDeadline())
			if _, err := cc.br.Peek(1); err != nil {
				if h := s.handoff.Load(); h != nil && isTimeout(err) && s.handOver(h, cc) {
					hijacked = true // woken by HandOff
				}
				return // closed, idle too long, or idle past the drain's grace
			}
			cc.mu.Lock()
			cc.state.Store(stateActive)
			cc.mu.Unlock()
		}
		cc.SetReadDeadline(time.Now().Add(s.readHeaderTimeout))
		req, status, err := s.readRequest(cc)
		if err != nil {
			if status != 0 {
				s.p.countRequest(req.method, status)
				s.p.m.refused.WithLabelValues("malformed").Inc()
				writeError(cc.bw, status, err.Error(), true)
				cc.bw.Flush()
			}
			return
		}
		cc.SetReadDeadline(time.Now().Add(s.readTimeout)) // the body, if any
		cc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		if s.draining.Load() && s.handoff.Load() == nil {
			req.close = true // answer this one, then close between responses
		}
		keep, hj := s.p.handle(cc, req)
		if hj {
			hijacked = true
			return
		}
		if !keep || req.close {
			cc.bw.Flush()
			return
		}
		if cc.br.Buffered() == 0 { // no pipelined request waiting: send now
			if err := cc.bw.Flush(); err != nil {
				return
			}
		}
	}
}

// request is what the loop needs of a client's request; the header lines
// stay as bytes in cc.hdr.
type request struct {
	method, target string
	http10         bool
	close          bool  // the client asked for, or is owed, Connection: close
	contentLength  int64 // -1: none
	chunked        bool
	expectContinue bool
	// lines are the header lines to pass on: offsets into hdr.
	lines [][2]int
}

var errHeaderTooLarge = errors.New("request header block too large")

// readLine reads one line of the header block into cc.hdr, keeping the
// block within limit.
func (s *connServer) readLine(cc *clientConn, limit int) ([]byte, error) {
	start := len(cc.hdr)
	for {
		frag, err := cc.br.ReadSlice('\n')
		if len(cc.hdr)+len(frag) > limit {
			return nil, errHeaderTooLarge
		}
		cc.hdr = append(cc.hdr, frag...)
		if err == nil {
			line := cc.hdr[start:]
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// readRequest reads the request line and headers. On a bad request it
// returns the status to answer (400 or 431); on a connection error, 0.
func (s *connServer) readRequest(cc *clientConn) (request, int, error) {
	req := request{contentLength: -1}
	cc.hdr = cc.hdr[:0]
	line, err := s.readLine(cc, s.maxHeaderBytes)
	if err != nil {
		if errors.Is(err, errHeaderTooLarge) {
			return req, http.StatusRequestHeaderFieldsTooLarge, err
		}
		return req, 0, err
	}
	m, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(m) == 0 || len(target) == 0 {
		return req, http.StatusBadRequest, errors.New("malformed request line")
	}
	if !isToken(m) || !noCTL(target, false) || bytes.IndexByte(target, ' ') >= 0 {
		return req, http.StatusBadRequest, errors.New("malformed request line")
	}
	req.method, req.target = string(m), string(target)
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.http10, req.close = true, true
	default:
		return req, http.StatusBadRequest, fmt.Errorf("unsupported protocol %q", proto)
	}
	var connTokens [][]byte
	for {
		start := len(cc.hdr)
		line, err := s.readLine(cc, s.maxHeaderBytes)
		if err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				return req, http.StatusRequestHeaderFieldsTooLarge, err
			}
			return req, 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validField(name, value) {
			return req, http.StatusBadRequest, errors.New("malformed header line (a field name is a token; a value holds no CR, LF, NUL or other control character)")
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Host"):
			continue // the upstream gets the target's authority as Host
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (req.contentLength >= 0 && req.contentLength != n) {
				return req, http.StatusBadRequest, errors.New("bad Content-Length")
			}
			req.contentLength = n
			continue // written again from the parsed value
		case asciiEqualFold(name, "Transfer-Encoding"):
			if !asciiEqualFold(value, "chunked") {
				return req, http.StatusBadRequest, errors.New("unsupported Transfer-Encoding")
			}
			req.chunked = true
			continue
		case asciiEqualFold(name, "Expect"):
			if asciiEqualFold(value, "100-continue") {
				req.expectContinue = true
			}
			continue
		case asciiEqualFold(name, "Connection"), asciiEqualFold(name, "Proxy-Connection"):
			var closeConn, keepAlive bool
			closeConn, keepAlive, connTokens = connectionTokens(value, connTokens)
			switch {
			case closeConn:
				req.close = true
			case keepAlive && req.http10:
				req.close = false
			}
			continue
		}
		if isHop(name) {
			continue
		}
		req.lines = append(req.lines, [2]int{start, start + len(line)})
	}
	if req.chunked && req.contentLength >= 0 {
		// Two framings: the way to request smuggling (RFC 9112 6.3).
		return req, http.StatusBadRequest, errors.New("both Content-Length and Transfer-Encoding")
	}
	req.lines = dropNamed(cc.hdr, req.lines, connTokens)
	return req, 0, nil
}

// connectionTokens reads a Connection header's value: close, keep-alive,
// and the fields it names (appended to named).
func connectionTokens(value []byte, named [][]byte) (closeConn, keepAlive bool, _ [][]byte) {
	for tok := range bytes.SplitSeq(value, []byte(",")) {
		tok = bytes.TrimSpace(tok)
		switch {
		case asciiEqualFold(tok, "close"):
			closeConn = true
		case asciiEqualFold(tok, "keep-alive"):
			keepAlive = true
		case len(tok) > 0:
			named = append(named, tok)
		}
	}
	return closeConn, keepAlive, named
}

// dropNamed leaves out the header lines whose field is named in tokens
// (a Connection header's list: hop-by-hop too, RFC 9110 7.6.1).
func dropNamed(head []byte, lines [][2]int, tokens [][]byte) [][2]int {
	if len(tokens) == 0 {
		return lines
	}
	kept := lines[:0]
	for _, l := range lines {
		name, _, _ := bytes.Cut(head[l[0]:l[1]], []byte(":"))
		drop := false
		for _, tok := range tokens {
			drop = drop || asciiEqualFold(name, string(tok))
		}
		if !drop {
			kept = append(kept, l)
		}
	}
	return kept
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1); Connection,
// Transfer-Encoding and Expect are read and handled where they are parsed.
var hopHeaders = []string{"Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

func isHop(name []byte) bool {
	for _, h := range hopHeaders {
		if asciiEqualFold(name, h) {
			return true
		}
	}
	return false
}

func asciiEqualFold[T []byte | string](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(b) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// writeError answers with a short text body.
func writeError(w *bufio.Writer, code int, msg string, closeConn bool) {
	body := "proxy: " + msg + "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n",
		code, http.StatusText(code), len(body))
	if closeConn {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	w.WriteString(body)
}

// requestCounters caches the per-(method, code) counters.
type requestCounters struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	m   map[requestKey]prometheus.Counter
}

type requestKey struct {
	method string
	code   int
}

func (r *requestCounters) inc(method string, code int) {
	if !validMethod(method) {
		method = "other" // no label per garbage method
	}
	k := requestKey{method, code}
	r.mu.RLock()
	c, ok := r.m[k]
	r.mu.RUnlock()
	if !ok {
		c = r.vec.WithLabelValues(method, strconv.Itoa(code))
		r.mu.Lock()
		r.m[k] = c
		r.mu.Unlock()
	}
	c.Inc()
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE":
		return true
	}
	return false
}

// errChunk is a chunked body that is not framed as RFC 9112 7.1 says.
var errChunk = errors.New("malformed chunked body")

// copyChunked passes a chunked body through as it is, to its last chunk
// and trailers, refusing (errChunk) any framing a recipient could read
// otherwise: a size that is not plain hex, a line not ended by CRLF, data
// not followed by CRLF, a control character in an extension or trailer.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		line, err := chunkLine(src)
		if err != nil {
			return total, err
		}
		sizeStr, ext, _ := bytes.Cut(line, []byte(";"))
		sizeStr = bytes.TrimRight(sizeStr, " \t") // BWS before an extension
		if len(sizeStr) == 0 || len(sizeStr) > 15 || !allHex(sizeStr) || !noCTL(ext, false) {
			return total, fmt.Errorf("%w: chunk size line %q", errChunk, line)
		}
		size, _ := strconv.ParseInt(string(sizeStr), 16, 64)
		dst.Write(line)
		dst.WriteString("\r\n")
		if size == 0 {
			for { // trailers, then the empty line
				t, err := chunkLine(src)
				if err != nil {
					return total, err
				}
				if len(t) > 0 {
					name, value, ok := bytes.Cut(t, []byte(":"))
					if !ok || !validField(name, value) {
						return total, fmt.Errorf("%w: trailer %q", errChunk, t)
					}
				}
				dst.Write(t)
				dst.WriteString("\r\n")
				if len(t) == 0 {
					return total, nil
				}
			}
		}
		n, err := io.CopyBuffer(dst, io.LimitReader(src, size), buf)
		total += n
		if err != nil {
			return total, err
		}
		if n != size {
			return total, io.ErrUnexpectedEOF
		}
		crlf, err := src.Peek(2)
		if err != nil {
			return total, err
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return total, fmt.Errorf("%w: chunk data not followed by CRLF", errChunk)
		}
		src.Discard(2)
		dst.WriteString("\r\n")
	}
}

// chunkLine reads one line of chunked framing, without its CRLF; a bare
// LF or CR in it is refused.
func chunkLine(src *bufio.Reader) ([]byte, error) {
	line, err := src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line too long", errChunk)
		}
		return nil, err
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok || bytes.IndexByte(body, '\r') >= 0 {
		return nil, fmt.Errorf("%w: line not ended by CRLF", errChunk)
	}
	return body, nil
}

// validField reports whether a header line's name is a token and its value
// holds no control character but HTAB (RFC 9110 5.1, 5.5): a bare CR or a
// NUL would let the next hop read other headers than this proxy did.
func validField(name, value []byte) bool {
	return isToken(name) && noCTL(value, true)
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tchar[c] {
			return false
		}
	}
	return true
}

var tchar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// noCTL reports whether b holds no control character (a tab is one unless
// tab). Byte by byte, not rune by rune: it runs on every header line of
// every request and response, and bytes from 0x80 up (obs-text) pass
// either way.
func noCTL(b []byte, tab bool) bool {
	for _, c := range b {
		if c < 0x20 && (c != '\t' || !tab) || c == 0x7f {
			return false
		}
	}
	return true
}

// allHex reports whether b is hex digits only.
func allHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
