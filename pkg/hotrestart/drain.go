package hotrestart

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Drainer drains an http.Server without dropping a request. Go's Shutdown
// closes a connection, unanswered, if it reads a request after Shutdown
// began; a client retries that on a reused connection but not on a fresh
// one. So Drain first lets every connection finish its request with
// "Connection: close", and calls Shutdown only when none is busy.
type Drainer struct {
	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
	next  func(net.Conn, http.ConnState)
}

// Track installs the drainer's connection-state hook on srv (keeping any
// hook srv had).
func Track(srv *http.Server) *Drainer {
	d := &Drainer{conns: map[net.Conn]http.ConnState{}, next: srv.ConnState}
	srv.ConnState = d.hook
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

// busy counts connections with a request to read or being served.
func (d *Drainer) busy() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, st := range d.conns {
		if st == http.StateNew || st == http.StateActive {
			n++
		}
	}
	return n
}

// Drain stops keep-alive (idle connections close now, busy ones after
// their response), waits until no connection is busy or ctx ends, then
// shuts srv down. Close the listeners first: the successor, or nobody,
// accepts from now on.
func (d *Drainer) Drain(ctx context.Context, srv *http.Server) error {
	srv.SetKeepAlivesEnabled(false)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for d.busy() > 0 {
		select {
		case <-ctx.Done():
			return srv.Shutdown(ctx)
		case <-t.C:
		}
	}
	return srv.Shutdown(ctx)
}
