package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Tally counts a load's requests, and the connections it opened; the first
// error is kept.
type Tally struct {
	OK, Failed, Dials atomic.Int64
	first             atomic.Value
}

// Fail counts a lost request.
func (t *Tally) Fail(err error) {
	t.Failed.Add(1)
	t.first.CompareAndSwap(nil, err.Error())
}

// FirstError is the first lost request's error, if any.
func (t *Tally) FirstError() any { return t.first.Load() }

// Exchange writes one request on c and reads its whole answer, which must
// be a 200; closed says the response ended the connection.
func Exchange(c net.Conn, br *bufio.Reader, request string) (closed bool, err error) {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		return false, fmt.Errorf("writing the request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, fmt.Errorf("reading the response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Close, nil
}

// KeepAlive is a client that never retries, as wrk: on one keep-alive
// connection to addr it writes request again the moment a response ends,
// and dials again only after a response that said Connection: close. Every
// error is a lost request. It runs until ctx ends.
func KeepAlive(ctx context.Context, addr, request string, n *Tally) {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				n.Fail(fmt.Errorf("dialing %s: %w", addr, err))
				c = nil
				continue
			}
			br = bufio.NewReader(c)
			n.Dials.Add(1)
		}
		closed, err := Exchange(c, br, request)
		if err != nil {
			n.Fail(err)
		} else {
			n.OK.Add(1)
		}
		if err != nil || closed {
			c.Close()
			c = nil
		}
	}
}
