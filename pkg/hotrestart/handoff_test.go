package hotrestart

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHandoffManyAtOnce: 600 connections handed over from 600 goroutines at
// once (more than one message holds, and far more messages than the
// kernel queues on the pair) each arrive once, under their own tag, as the
// very socket that was sent: what its peer writes is read from the adopted
// connection.
func TestHandoffManyAtOnce(t *testing.T) {
	const n = 600
	sender, childEnd, err := newHandoffPair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(childEnd.Fd())) // as the successor inherits it
	childEnd.Close()
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := handoffFromFD(fd)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// n pairs: ours (handed over) and the peer that writes its tag.
	ours := make([]net.Conn, n)
	for i := range ours {
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		if ours[i], err = ln.Accept(); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(peer, "%04d", i); err != nil {
			t.Fatal(err)
		}
	}

	got := map[string]string{}
	var mu sync.Mutex
	received := make(chan error, 1)
	go func() {
		received <- receiver.Receive(func(tag string, c net.Conn) {
			defer c.Close()
			b := make([]byte, 4)
			_, err := io.ReadFull(c, b)
			mu.Lock()
			defer mu.Unlock()
			if _, dup := got[tag]; dup || err != nil {
				t.Errorf("tag %s: again or unreadable (%v)", tag, err)
			}
			got[tag] = string(b)
		})
	}()
	var wg sync.WaitGroup
	for i, c := range ours {
		wg.Go(func() {
			if err := sender.Send(fmt.Sprintf("conn %04d", i), c); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	sender.Close()
	if err := <-received; err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d of %d connections arrived", len(got), n)
	}
	for tag, data := range got {
		if tag != "conn "+data {
			t.Errorf("%s arrived with the socket of %s", tag, data)
		}
	}
}

// TestHandoffRefusesBadTags: a tag Receive could not split is refused,
// and the connection stays open here.
func TestHandoffRefusesBadTags(t *testing.T) {
	h, f, err := newHandoffPair()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tag := range []string{"up\nstream", strings.Repeat("x", 256)} {
		if err := h.Send(tag, c); err == nil || !strings.Contains(err.Error(), "tag") {
			t.Errorf("tag %q: %v, want a refusal of the tag", tag, err)
		}
	}
	if _, err := c.Write([]byte("still ours")); err != nil {
		t.Errorf("the connection was closed: %v", err)
	}
}
