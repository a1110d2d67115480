package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/crawlctl/crawlctl/pkg/hotrestart"
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
	// handoff, once set, takes every connection put back (a reload).
	handoff *hotrestart.Handoff
}

type upConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// get takes an idle connection to addr, or (or, fresh, always) dials one
// within timeout.
func (u *upstreams) get(ctx context.Context, addr string, timeout time.Duration, fresh bool) (*upConn, bool, error) {
	u.mu.Lock()
	if l := u.idle[addr]; len(l) > 0 && !fresh {
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
	if h := u.handoff; h != nil {
		u.mu.Unlock()
		u.send(h, addr, c)
		return
	}
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
