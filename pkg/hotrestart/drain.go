package hotrestart

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// IdleGrace is how long, once draining, a keep-alive connection between
// requests may still send one (answered with Connection: close) before it
// is closed. Closing it the moment the drain starts would race a request
// already on the wire, which a client that does not retry (wrk, most HTTP
// libraries, every POST) loses; a busy client's next request comes within
// microseconds, and one idle this long is not about to send.
const IdleGrace = 2 * time.Second

// Drainer drains an http.Server without dropping a request. Go's Shutdown
// (and SetKeepAlivesEnabled(false)) closes idle connections at once, and
// closes a connection unanswered if it reads a request after Shutdown
// began. So Drain first answers every request with "Connection: close" for
// IdleGrace, letting each keep-alive client send its next request and be
// told to go, and calls Shutdown only when no connection is busy.
type Drainer struct {
	mu       sync.Mutex
	conns    map[net.Conn]http.ConnState
	next     func(net.Conn, http.ConnState)
	draining atomic.Bool
}

// Track installs the drainer's connection-state hook and response wrapper
// on srv (keeping any hook srv had). Call it before serving.
func Track(srv *http.Server) *Drainer {
	d := &Drainer{conns: map[net.Conn]http.ConnState{}, next: srv.ConnState}
	srv.ConnState = d.hook
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() && r.Header.Get("Upgrade") == "" {
			w.Header().Set("Connection", "close") // net/http closes after this response
		}
		h.ServeHTTP(w, r)
	})
	return d
}

func (d *Drainer) hook(c net.Conn, st http.ConnState) {
	d.mu.Lock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	default:
		d.conns[c] = st
	}
	d.mu.Unlock()
	if d.next != nil {
		d.next(c, st)
	}
}

// counts are the connections open and those with a request to read or
// being served.
func (d *Drainer) counts() (open, busy int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.conns {
		if st == http.StateNew || st == http.StateActive {
			busy++
		}
	}
	return len(d.conns), busy
}

// Drain answers every request with Connection: close; once every
// connection is closed, or IdleGrace has passed and none is busy, it shuts
// srv down (closing the idle rest), or at ctx's end. Close the listeners
// first: the successor, or nobody, accepts from now on.
func (d *Drainer) Drain(ctx context.Context, srv *http.Server) error {
	d.draining.Store(true)
	grace := time.Now().Add(IdleGrace)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		open, busy := d.counts()
		if open == 0 || (busy == 0 && time.Now().After(grace)) {
			break
		}
		select {
		case <-ctx.Done():
			return srv.Shutdown(ctx)
		case <-t.C:
		}
	}
	srv.SetKeepAlivesEnabled(false)
	return srv.Shutdown(ctx)
}
