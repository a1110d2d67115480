package proxy

import (
	"bufio"
	"context"
	"net"
	"strings"
	"time"

	"github.com/crawlctl/crawlctl/pkg/hotrestart"
)

// Tags of the connections a reload hands over.
const (
	tagClient   = "client"
	tagUpstream = "upstream " // + the destination host:port
)

// HandOff passes every client connection to the successor at its next
// request boundary (an idle one at once), and the idle upstream
// connections with them, so that a reload closes nothing: no client
// reconnects, no destination is dialed again, and a request already on the
// wire waits in its socket for the new process. A connection with a
// request in flight hands over once it is answered; CONNECT tunnels are
// not handed over but drained, as the server's Sessions.
func (s *connServer) HandOff(ctx context.Context, h *hotrestart.Handoff) error {
	s.handoff.Store(h)
	s.draining.Store(true) // the listener is closed: Serve returns
	s.p.up.handOff(h)
	past := time.Unix(1, 0)
	return s.untilGone(ctx, func(cc *clientConn) {
		// Wake an idle connection's loop from its wait for the next
		// request; it hands itself over. Again every tick: the loop may
		// have set its idle deadline after the last wake.
		cc.mu.Lock()
		if cc.state.Load() == stateIdle {
			cc.SetReadDeadline(past)
		}
		cc.mu.Unlock()
	})
}

// handOver passes cc to the successor if nothing of it is left in this
// process: no buffered request bytes, every response byte written. It
// reports whether cc is gone (handed over, or closed on a failure).
func (s *connServer) handOver(h *hotrestart.Handoff, cc *clientConn) bool {
	if cc.br.Buffered() > 0 {
		return false // a pipelined request: answer it first
	}
	if err := cc.bw.Flush(); err != nil {
		cc.Close()
		return true
	}
	cc.SetDeadline(time.Time{})
	if err := h.Send(tagClient, cc.Conn); err != nil {
		s.p.opts.Log.Warn("handing a client connection over failed; closing it", "err", err)
		cc.Close()
	}
	return true
}

// Adopt serves a connection the previous process handed over: a client
// connection between two requests, or an idle upstream one for the pool.
func (s *connServer) Adopt(tag string, c net.Conn) {
	if addr, ok := strings.CutPrefix(tag, tagUpstream); ok {
		s.p.up.adopt(addr, c, s.p.opts.EgressIP)
		return
	}
	if tag != tagClient {
		c.Close()
		return
	}
	cc := &clientConn{Conn: c}
	s.mu.Lock()
	s.conns[cc] = struct{}{}
	s.mu.Unlock()
	go s.serve(cc, true)
}

// handOff passes the idle upstream connections to the successor, and from
// now on each one put back.
func (u *upstreams) handOff(h *hotrestart.Handoff) {
	u.mu.Lock()
	u.handoff = h
	idle := u.idle
	u.idle = map[string][]*upConn{}
	u.mu.Unlock()
	for addr, l := range idle {
		for _, c := range l {
			u.send(h, addr, c)
		}
	}
}

func (u *upstreams) send(h *hotrestart.Handoff, addr string, c *upConn) {
	if c.br.Buffered() > 0 || c.bw.Buffered() > 0 {
		c.Close() // not at a response boundary: not ours to pass on
		return
	}
	if err := h.Send(tagUpstream+addr, c.Conn); err != nil {
		c.Close()
	}
}

// adopt pools an upstream connection the previous process handed over, if
// it leaves from this proxy's egress address.
func (u *upstreams) adopt(addr string, c net.Conn, egress net.IP) {
	if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || (egress != nil && !la.IP.Equal(egress)) {
		c.Close()
		return
	}
	u.put(addr, &upConn{Conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)})
}

var _ hotrestart.HandingOff = (*connServer)(nil)
