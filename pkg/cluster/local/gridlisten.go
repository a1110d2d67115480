package local

import (
	"fmt"
	"net"
	"strconv"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

// defaultGridListen is the seed's grid address, ws://localhost:8080.
var defaultGridListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(stack.DefaultPorts.Grid)))

// gridListen decides where a stack's grid listens: want (--grid-listen)
// when given, else the running grid's address, else def when it is free,
// else a free port. note says so when the grid does not get def.
func gridListen(want, running, def string) (addr, note string, err error) {
	switch {
	case want != "":
		if want != running && !canListen(want) {
			return "", "", stack.Usagef("--grid-listen %s: the address is in use; choose another, or leave the flag out for 127.0.0.1:8080 or a free port", want)
		}
		return want, "", nil
	case running != "":
		return running, "", nil
	case canListen(def):
		return def, "", nil
	}
	addr, err = freeAddr()
	if err != nil {
		return "", "", err
	}
	return addr, fmt.Sprintf("%s is in use: the grid listens on %s instead (choose with --grid-listen)", def, addr), nil
}

// canListen reports whether addr can be listened on now.
func canListen(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
