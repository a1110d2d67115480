package hotrestart

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdListener accepts on an inherited listening socket through Go's poller
// without ever calling File.Fd (as net.FileListener does), which would
// switch the socket — shared with the process that handed it over — to
// blocking mode for a moment: enough for that process's accept to block in
// the kernel and take a connection after it stopped serving.
type fdListener struct {
	f    *os.File // non-blocking, registered with the poller
	rc   syscall.RawConn
	addr net.Addr
}

func newFDListener(f *os.File) (*fdListener, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &fdListener{f: f, rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, serr = unix.Getsockname(int(fd)); serr == nil {
			l.addr = sockaddrToTCP(sa)
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	return l, nil
}

func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// Accept waits on the poller and accepts with accept4(SOCK_NONBLOCK).
func (l *fdListener) Accept() (net.Conn, error) {
	var nfd int
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return !errors.Is(aerr, unix.EAGAIN) // false: wait for readiness
	})
	if err != nil {
		return nil, err // closed
	}
	if aerr != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: aerr}
	}
	// The accepted socket is this process's own: FileConn may do as it likes.
	f := os.NewFile(uintptr(nfd), "conn")
	c, err := net.FileConn(f)
	f.Close()
	return c, err
}

func (l *fdListener) Close() error   { return l.f.Close() }
func (l *fdListener) Addr() net.Addr { return l.addr }

// SyscallConn lets Upgrade hand the socket on again.
func (l *fdListener) SyscallConn() (syscall.RawConn, error) { return l.rc, nil }
