package local

import (
	"net"
	"strings"
	"testing"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

// TestGridListen: the grid gets the seed's address when it is free, a
// free port and a note when it is taken, the running grid's address on a
// reload, and --grid-listen when given (refused when taken by another).
func TestGridListen(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().String()
	free, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want, running, def string
		addr                     string // "" : some other free port
		note, usage              bool
	}{
		{name: "default free", def: free, addr: free},
		{name: "default taken", def: taken, note: true},
		{name: "running grid keeps its address", running: taken, def: free, addr: taken},
		{name: "given and free", want: free, def: taken, addr: free},
		{name: "given and ours", want: taken, running: taken, def: free, addr: taken},
		{name: "given and taken", want: taken, def: free, usage: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, note, err := gridListen(c.want, c.running, c.def)
			if c.usage {
				if !stack.IsUsage(err) || !strings.Contains(err.Error(), "--grid-listen "+taken) {
					t.Fatalf("got %q, %v; want a usage error naming --grid-listen %s", addr, err, taken)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.addr != "" && addr != c.addr {
				t.Errorf("address %s, want %s", addr, c.addr)
			}
			if c.addr == "" && (addr == taken || !canListen(addr)) {
				t.Errorf("address %s: want another, free port", addr)
			}
			if got := note != ""; got != c.note {
				t.Errorf("note %q, want one: %v", note, c.note)
			}
			if c.note && !strings.Contains(note, taken+" is in use") || c.note && !strings.Contains(note, addr) {
				t.Errorf("note %q should name %s and %s", note, taken, addr)
			}
		})
	}
}

// TestGridDefaultIsTheSeedsAddress: with no --grid-listen, a new stack's
// grid asks for 127.0.0.1:8080, the seed's ws://localhost:8080 (the suite
// cannot take that port end to end: the kind tests map it at the same
// time).
func TestGridDefaultIsTheSeedsAddress(t *testing.T) {
	if defaultGridListen != "127.0.0.1:8080" {
		t.Fatalf("the grid's default address is %s, want 127.0.0.1:8080", defaultGridListen)
	}
}
