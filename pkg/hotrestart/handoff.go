package hotrestart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
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
//
// Connections handed over at once go in one message (up to maxBatch): the
// kernel queues at most net.unix.max_dgram_qlen (10 by default) messages
// on the pair, so one message each would make the old process wait on the
// new one's scheduling every ten connections.
type Handoff struct {
	c *net.UnixConn

	mu       sync.Mutex
	pending  *batch // what the next message carries
	flushing bool   // a Send is writing messages
}

// batch is connections that go in one message, and how it went.
type batch struct {
	tags []string
	fds  []int
	done chan struct{}
	err  error
}

// maxBatch is the most descriptors one message carries (the kernel's
// SCM_MAX_FD is 253).
const maxBatch = 250

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

// Send passes c's socket to the successor under tag (at most 255 bytes,
// no newline) and closes this process's descriptor of it. Nothing may be
// left in this process's buffers of c: the successor reads on from the
// socket. Sends from many goroutines at once share messages.
func (h *Handoff) Send(tag string, c net.Conn) error {
	if len(tag) > 255 || strings.ContainsRune(tag, '\n') {
		return fmt.Errorf("hand-off tag %q is too long or has a newline", tag)
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("the connection has no descriptor to hand over")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	// c stays open until its message is written: fd stays c's.
	if err := h.send(tag, fd); err != nil {
		return fmt.Errorf("handing a connection over: %w", err)
	}
	return c.Close() // the successor holds the socket now
}

// send queues fd for the next message and returns once it is written. The
// first sender writes messages until none is pending; the others wait for
// theirs (group commit).
func (h *Handoff) send(tag string, fd int) error {
	h.mu.Lock()
	if h.pending == nil {
		h.pending = &batch{done: make(chan struct{})}
	}
	mine := h.pending
	mine.tags, mine.fds = append(mine.tags, tag), append(mine.fds, fd)
	if h.flushing {
		h.mu.Unlock()
		<-mine.done
		return mine.err
	}
	h.flushing = true
	for h.pending != nil {
		b := h.pending
		h.pending = nil
		h.mu.Unlock()
		for i := 0; i < len(b.fds) && b.err == nil; i += maxBatch {
			j := min(i+maxBatch, len(b.fds))
			_, _, b.err = h.c.WriteMsgUnix([]byte(strings.Join(b.tags[i:j], "\n")), unix.UnixRights(b.fds[i:j]...), nil)
		}
		close(b.done)
		h.mu.Lock()
	}
	h.flushing = false
	h.mu.Unlock()
	return mine.err
}

// Receive adopts what the predecessor hands over, calling adopt for each
// connection, until the predecessor closes its end.
func (h *Handoff) Receive(adopt func(tag string, c net.Conn)) error {
	buf := make([]byte, maxBatch*256)
	oob := make([]byte, unix.CmsgSpace(maxBatch*4))
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
		var fds []int
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
		tags := strings.Split(string(buf[:n]), "\n")
		for i, fd := range fds {
			// The socket is ours alone now: FileConn may switch it as it
			// likes.
			f := os.NewFile(uintptr(fd), "conn")
			if i >= len(tags) { // not what Send writes: not ours to serve
				f.Close()
				continue
			}
			c, err := net.FileConn(f)
			f.Close()
			if err == nil {
				adopt(tags[i], c)
			}
		}
	}
}

// Close ends the hand-off: the successor's Receive returns.
func (h *Handoff) Close() error { return h.c.Close() }
