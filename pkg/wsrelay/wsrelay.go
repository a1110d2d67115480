// Package wsrelay relays WebSocket sessions message by message between two
// connections: the browser grid relays Playwright clients to browser
// workers, and a browser worker relays them to its Playwright server.
// Messages stream through pooled buffers (never held whole), a per-message
// size limit applies both ways, and keepalive pings find dead peers.
package wsrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options bound a relayed session.
type Options struct {
	// MaxMessageBytes is the largest message either side may send (a
	// larger one closes the session with 1009). Default 64 MiB: Playwright
	// sends screenshots and traces as single messages.
	MaxMessageBytes int64
	// PingInterval is how often each side is pinged; a side that answers
	// nothing (no message, no pong) for three intervals is dropped.
	// Default 15 s.
	PingInterval time.Duration
	// HandshakeTimeout bounds dialing the next hop. Default 10 s.
	HandshakeTimeout time.Duration
}

// DefaultOptions are a relay's defaults, which the grid's flags show;
// every zero field is filled from them.
func DefaultOptions() Options {
	return Options{MaxMessageBytes: 64 << 20, PingInterval: 15 * time.Second, HandshakeTimeout: 10 * time.Second}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
	}
	if o.PingInterval <= 0 {
		o.PingInterval = d.PingInterval
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = d.HandshakeTimeout
	}
	return o
}

// writeBuffers is shared by every connection's writer; a connection holds a
// write buffer only while it writes a message.
var writeBuffers = &sync.Pool{}

// copyBuffers lend the 32 KiB buffers a message streams through.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Upgrader accepts WebSocket sessions from any Origin: a caller that
// restricts origins checks them before upgrading, with its own answer.
func Upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  32 << 10,
		WriteBufferPool:  writeBuffers,
		CheckOrigin:      func(*http.Request) bool { return true },
	}
}

// handshakeHeaders are set by the WebSocket handshake of each hop itself,
// and hopHeaders belong to one connection (RFC 9110 7.6.1); neither is
// forwarded.
var handshakeHeaders = []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Sec-Websocket-Accept"}
var hopHeaders = []string{"Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Host", "Content-Length"}

// ForwardHeaders returns the headers of an incoming handshake that the next
// hop should see (Playwright's x-playwright-* among them), without the
// hop-by-hop ones, those named in Connection, and drop (credentials meant
// for this hop only).
func ForwardHeaders(h http.Header, drop ...string) http.Header {
	out := h.Clone()
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, list := range [][]string{handshakeHeaders, hopHeaders, drop} {
		for _, name := range list {
			out.Del(name)
		}
	}
	return out
}

// Dial opens a session to a WebSocket endpoint, passing headers and the
// client's subprotocols on.
func Dial(ctx context.Context, url string, headers http.Header, subprotocols []string, o Options) (*websocket.Conn, *http.Response, error) {
	o = o.withDefaults()
	d := websocket.Dialer{
		HandshakeTimeout: o.HandshakeTimeout,
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  32 << 10,
		WriteBufferPool:  writeBuffers,
		Subprotocols:     subprotocols,
		NetDialContext:   (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
	}
	c, resp, err := d.DialContext(ctx, url, headers)
	if err != nil {
		if resp != nil {
			return nil, resp, fmt.Errorf("dialing %s: %w (HTTP %d)", url, err, resp.StatusCode)
		}
		return nil, nil, fmt.Errorf("dialing %s: %w", url, err)
	}
	return c, resp, nil
}

// Relay copies messages both ways until either side closes or fails, passes
// a close frame on to the other side, and closes both connections. It
// returns the bytes relayed from a to b and from b to a.
func Relay(a, b *websocket.Conn, o Options) (aToB, bToA int64) {
	o = o.withDefaults()
	idle := 3 * o.PingInterval
	for _, c := range []*websocket.Conn{a, b} {
		c.SetReadLimit(o.MaxMessageBytes)
		c.SetReadDeadline(time.Now().Add(idle))
		c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(idle)) })
	}
	stop := make(chan struct{})
	var pings sync.WaitGroup
	pings.Go(func() {
		t := time.NewTicker(o.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				deadline := time.Now().Add(o.PingInterval)
				a.WriteControl(websocket.PingMessage, nil, deadline)
				b.WriteControl(websocket.PingMessage, nil, deadline)
			}
		}
	})
	done := make(chan struct{}, 2)
	var wg sync.WaitGroup
	wg.Go(func() { aToB = pump(b, a, idle); done <- struct{}{} })
	wg.Go(func() { bToA = pump(a, b, idle); done <- struct{}{} })
	<-done
	// One side ended and its close went on to the other; give the other a
	// moment to answer the close, then end both.
	grace := time.Now().Add(2 * time.Second)
	a.SetReadDeadline(grace)
	b.SetReadDeadline(grace)
	wg.Wait()
	close(stop)
	pings.Wait()
	a.Close()
	b.Close()
	return aToB, bToA
}

// pump streams every message from src to dst; at src's end it sends dst
// the close src sent (or one saying why src ended).
func pump(dst, src *websocket.Conn, idle time.Duration) int64 {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	var total int64
	for {
		mt, r, err := src.NextReader()
		if err != nil {
			dst.WriteControl(websocket.CloseMessage, closeFrame(err), time.Now().Add(time.Second))
			return total
		}
		src.SetReadDeadline(time.Now().Add(idle))
		w, err := dst.NextWriter(mt)
		if err != nil {
			src.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "peer gone"), time.Now().Add(time.Second))
			return total
		}
		n, err := io.CopyBuffer(w, r, *bufp)
		total += n
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			code, text := websocket.CloseGoingAway, "relay failed"
			if errors.Is(err, websocket.ErrReadLimit) {
				code, text = websocket.CloseMessageTooBig, "message too big"
			}
			msg := websocket.FormatCloseMessage(code, text)
			src.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			dst.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return total
		}
	}
}

// closeFrame is the close to pass on for the error that ended a side.
func closeFrame(err error) []byte {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		switch ce.Code {
		case websocket.CloseNoStatusReceived: // a close without a code
			return websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		case websocket.CloseAbnormalClosure, websocket.CloseTLSHandshake: // never sent on the wire
			return websocket.FormatCloseMessage(websocket.CloseGoingAway, "peer gone")
		}
		return websocket.FormatCloseMessage(ce.Code, ce.Text)
	case errors.Is(err, websocket.ErrReadLimit):
		return websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "message too big")
	default:
		return websocket.FormatCloseMessage(websocket.CloseGoingAway, "peer gone")
	}
}
