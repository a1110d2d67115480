package hotrestart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const envHandoff = "CRAWLCTL_HANDOFF_FD"

// Handoff passes open connections from a process to its successor, over a
// Unix socket pair the two share (SCM_RIGHTS). A keep-alive connection
// handed over between two requests goes on in the new process as if
// nothing happened: the socket itself moves, so a request already on the
// wire waits in its receive queue for the new owner. Nothing is closed, no
// client reconnects, and none can lose a request to the hand-off.
type Handoff struct {
	c *net.UnixConn
}

// HandingOff is a Serving that can pass its connections to the successor
// instead of closing them one by one.
type HandingOff interface {
	Serving
	// HandOff passes every connection through h as it reaches a request
	// boundary, until none is left or ctx ends (then it closes the rest
	// as Drain would). The listeners are closed before.
	HandOff(ctx context.Context, h *Handoff) error
	// Adopt serves a connection the predecessor handed over with tag.
	Adopt(tag string, c net.Conn)
}

// newHandoffPair returns this process's end of a new socket pair and the
// file the child inherits.
func newHandoffPair() (*Handoff, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the hand-off socket pair: %w", err)
	}
	h, err := handoffFromFD(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return h, os.NewFile(uintptr(fds[1]), "handoff"), nil
}

func handoffFromFD(fd int) (*Handoff, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "handoff")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("opening the hand-off socket: %w", err)
	}
	return &Handoff{c: c.(*net.UnixConn)}, nil
}

// inheritedHandoff is the parent's hand-off socket, if it passed one.
func inheritedHandoff() (*Handoff, error) {
	s := os.Getenv(envHandoff)
	os.Unsetenv(envHandoff)
	if s == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is malformed", envHandoff, s)
	}
	return handoffFromFD(fd)
}

// Send passes c's socket to the successor under tag (at most 255 bytes)
// and closes this process's descriptor of it. Nothing may be left in this
// process's buffers of c: the successor reads on from the socket.
func (h *Handoff) Send(tag string, c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("the connection has no descriptor to hand over")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, _, serr = h.c.WriteMsgUnix([]byte(tag), unix.UnixRights(int(fd)), nil)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("handing a connection over: %w", serr)
	}
	return c.Close() // the successor holds the socket now
}

// Receive adopts what the predecessor hands over, calling adopt for each
// connection, until the predecessor closes its end.
func (h *Handoff) Receive(adopt func(tag string, c net.Conn)) error {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := h.c.ReadMsgUnix(buf, oob)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 && oobn == 0 {
			return nil // the predecessor is done
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return fmt.Errorf("reading a handed-over connection: %w", err)
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				// The socket is ours alone now: FileConn may switch it as
				// it likes.
				f := os.NewFile(uintptr(fd), "conn")
				c, err := net.FileConn(f)
				f.Close()
				if err == nil {
					adopt(string(buf[:n]), c)
				}
			}
		}
	}
}

// Close ends the hand-off: the successor's Receive returns.
func (h *Handoff) Close() error { return h.c.Close() }
