// Package hotrestart gives a server lossless restarts: its listening
// sockets are opened with SO_REUSEPORT (several processes may share a port)
// and, on Upgrade, handed to a new copy of the process, which inherits the
// sockets themselves. The old process stops accepting only once the new one
// says it is ready, so no connection waiting in the accept queue is reset
// (closing a SO_REUSEPORT listener would reset them; closing one of two
// descriptors of the same socket does not).
//
// The protocol: the parent starts the child with the listeners as extra
// files and their names in CRAWLCTL_INHERIT (name=fd,...), plus the write
// end of a pipe in CRAWLCTL_READY_FD; the child calls Ready once it serves,
// which closes the pipe; the parent then drains and exits. The child also
// inherits one end of a Unix socket pair (CRAWLCTL_HANDOFF_FD) over which
// the parent may pass it open connections (Handoff), if the child says,
// when ready, that it adopts them.
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
	"time"

	"golang.org/x/sys/unix"
)

const (
	envInherit = "CRAWLCTL_INHERIT"
	envReady   = "CRAWLCTL_READY_FD"
)

// Listeners opens or inherits this process's named listeners.
type Listeners struct {
	mu        sync.Mutex
	inherited map[string]*os.File
	listeners map[string]net.Listener
	order     []string
	handoff   *Handoff // from the parent, if it passed one
}

// New reads what a parent handed down, if anything.
func New() (*Listeners, error) {
	l := &Listeners{inherited: map[string]*os.File{}, listeners: map[string]net.Listener{}}
	h, err := inheritedHandoff()
	if err != nil {
		return nil, err
	}
	l.handoff = h
	spec := os.Getenv(envInherit)
	os.Unsetenv(envInherit) // our own children get it from Upgrade only
	if spec == "" {
		return l, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		name, fdStr, ok := strings.Cut(kv, "=")
		fd, err := strconv.Atoi(fdStr)
		if !ok || err != nil || fd < 3 {
			return nil, fmt.Errorf("%s=%q is malformed", envInherit, spec)
		}
		l.inherited[name] = os.NewFile(uintptr(fd), name)
	}
	return l, nil
}

// Handoff is the socket the parent hands connections over on, or nil.
func (l *Listeners) Handoff() *Handoff { return l.handoff }

// Inherited reports whether this process took over from a parent.
func (l *Listeners) Inherited() bool { return len(l.inherited) > 0 }

// reusePort sets SO_REUSEADDR and SO_REUSEPORT on a socket before bind.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	return errors.Join(err, serr)
}

// Listen returns the listener called name: inherited from the parent when
// there is one, else a new SO_REUSEPORT TCP listener on addr.
func (l *Listeners) Listen(name, addr string) (net.Listener, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.listeners[name]; ok {
		return ln, nil
	}
	var ln net.Listener
	var err error
	if f, ok := l.inherited[name]; ok {
		if ln, err = newFDListener(f); err != nil {
			return nil, fmt.Errorf("inheriting listener %s: %w", name, err)
		}
	} else {
		lc := net.ListenConfig{Control: reusePort}
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w (is another process using the port?)", addr, err)
		}
	}
	l.listeners[name] = ln
	l.order = append(l.order, name)
	return ln, nil
}

// Ready tells the parent, if any, that this process now serves; the parent
// then stops accepting and drains.
func Ready() error { return ready(false) }

// ready tells the parent that this process serves and, with adopts, that
// it takes connections over the hand-off socket.
func ready(adopts bool) error {
	fdStr := os.Getenv(envReady)
	if fdStr == "" {
		return nil
	}
	os.Unsetenv(envReady)
	fd, err := strconv.Atoi(fdStr)
	if err != nil {
		return fmt.Errorf("%s=%q is malformed", envReady, fdStr)
	}
	f := os.NewFile(uintptr(fd), "ready")
	msg := "ready\n"
	if adopts {
		msg = "ready handoff\n"
	}
	_, err = f.Write([]byte(msg))
	return errors.Join(err, f.Close())
}

// Upgrade starts a new copy of this process (same binary, arguments and
// environment) that inherits every listener, and waits until it is ready
// or timeout passes. On success the caller stops accepting and drains, or,
// given a Handoff (the new process said it adopts connections), hands its
// connections over; on error it keeps serving.
//
// The listeners go to the child as raw descriptors through
// syscall.StartProcess: os/exec would call File.Fd, which switches a
// descriptor to blocking mode, and O_NONBLOCK belongs to the socket shared
// with our own listener, whose accept would then block in the kernel and
// take (and drop) a connection after we stopped serving.
func (l *Listeners) Upgrade(timeout time.Duration) (*os.Process, *Handoff, error) {
	l.mu.Lock()
	files := []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd()}
	var spec []string
	for _, name := range l.order {
		sc, ok := l.listeners[name].(syscall.Conn)
		if !ok {
			l.mu.Unlock()
			return nil, nil, fmt.Errorf("listener %s cannot be handed over", name)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			l.mu.Unlock()
			return nil, nil, err
		}
		var fd uintptr
		if err := rc.Control(func(f uintptr) { fd = f }); err != nil {
			l.mu.Unlock()
			return nil, nil, err
		}
		spec = append(spec, fmt.Sprintf("%s=%d", name, len(files)))
		files = append(files, fd)
	}
	defer l.mu.Unlock() // keep the listeners open until the child has them

	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	h, hf, err := newHandoffPair()
	if err != nil {
		return nil, nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		h.Close()
		hf.Close()
		return nil, nil, err
	}
	defer pr.Close()
	env := append(os.Environ(), envInherit+"="+strings.Join(spec, ","),
		fmt.Sprintf("%s=%d", envReady, len(files)), fmt.Sprintf("%s=%d", envHandoff, len(files)+1))
	files = append(files, pw.Fd(), hf.Fd())
	pid, err := syscall.ForkExec(exe, append([]string{exe}, os.Args[1:]...), &syscall.ProcAttr{Env: env, Files: files})
	pw.Close() // the child holds the write end now, and its end of the pair
	hf.Close()
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("starting the new process: %w", err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { _, err := proc.Wait(); exited <- err }()
	type answer struct {
		adopts bool
		err    error
	}
	readyc := make(chan answer, 1)
	go func() {
		b, err := io.ReadAll(pr)
		if err == nil && !strings.HasPrefix(string(b), "ready") {
			err = errors.New("the new process closed its ready pipe without being ready")
		}
		readyc <- answer{strings.HasPrefix(string(b), "ready handoff"), err}
	}()
	select {
	case a := <-readyc:
		if a.err != nil {
			proc.Kill()
			h.Close()
			return nil, nil, a.err
		}
		if !a.adopts {
			h.Close()
			h = nil
		}
		return proc, h, nil
	case err := <-exited:
		h.Close()
		return nil, nil, fmt.Errorf("the new process exited before it was ready: %v", err)
	case <-time.After(timeout):
		proc.Kill()
		h.Close()
		return nil, nil, fmt.Errorf("the new process was not ready within %v", timeout)
	}
}

// Close closes this process's descriptors of the listeners: it stops
// accepting; a process that inherited them keeps the sockets open.
func (l *Listeners) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, name := range l.order {
		errs = append(errs, l.listeners[name].Close())
	}
	return errors.Join(errs...)
}
