package wsrelay

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echo is a WebSocket server that sends every message back and reports the
// handshake headers it saw.
func echo(t *testing.T, seen chan<- http.Header) *httptest.Server {
	up := Upgrader()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r.Header.Clone()
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// relay is a server relaying each session to backend.
func relay(t *testing.T, backend string, o Options) *httptest.Server {
	up := Upgrader()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next, _, err := Dial(r.Context(), backend, ForwardHeaders(r.Header, "Authorization"), websocket.Subprotocols(r), o)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			next.Close()
			return
		}
		Relay(c, next, o)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func TestRelayCarriesMessagesAndHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	r := relay(t, wsURL(echo(t, seen)), Options{MaxMessageBytes: 1 << 20})
	h := http.Header{"X-Playwright-Browser": {"chromium"}, "Authorization": {"Bearer secret"}, "Keep-Alive": {"300"}}
	c, _, err := websocket.DefaultDialer.Dial(wsURL(r), h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := <-seen
	if got.Get("X-Playwright-Browser") != "chromium" {
		t.Errorf("x-playwright-browser not forwarded: %v", got)
	}
	if got.Get("Authorization") != "" || got.Get("Keep-Alive") != "" {
		t.Errorf("credentials or hop-by-hop headers forwarded: %v", got)
	}
	big := bytes.Repeat([]byte("x"), 200<<10) // several copy buffers
	for _, msg := range [][]byte{[]byte(`{"id":1}`), big} {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		_, back, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, msg) {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(back))
		}
	}
}

func TestRelayClosesOversizedMessage(t *testing.T) {
	r := relay(t, wsURL(echo(t, nil)), Options{MaxMessageBytes: 1 << 10})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 4<<10))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized message: got %v, want close 1009", err)
	}
}

func TestRelayPassesCloseOn(t *testing.T) {
	// The backend closes with a code of its own; the client sees that code.
	up := Upgrader()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "browser closed"), time.Now().Add(time.Second))
		c.ReadMessage()
		c.Close()
	}))
	defer backend.Close()
	r := relay(t, wsURL(backend), Options{})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "browser closed" {
		t.Fatalf("got %v, want the backend's close 4001", err)
	}
}

func TestDialFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := Dial(ctx, "ws://127.0.0.1:1/", nil, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "dialing ws://127.0.0.1:1/") {
		t.Fatalf("got %v", err)
	}
}

// TestKeepalive: a client that answers pings stays connected through
// silent intervals; one that answers nothing is dropped after three.
func TestKeepalive(t *testing.T) {
	// 500ms pings: a client is dropped after 1.5s without a pong, far more
	// than a busy machine's scheduling stalls.
	r := relay(t, wsURL(echo(t, nil)), Options{PingInterval: 500 * time.Millisecond})
	alive, _, err := websocket.DefaultDialer.Dial(wsURL(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	readErr := make(chan error, 1)
	go func() { // reading answers pings
		_, _, err := alive.ReadMessage()
		readErr <- err
	}()
	deaf, _, err := websocket.DefaultDialer.Dial(wsURL(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	time.Sleep(4 * time.Second) // deaf reads nothing, so answers no ping
	select {
	case err := <-readErr:
		t.Fatalf("a client answering pings was dropped: %v", err)
	default:
	}
	if err := alive.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatalf("write after silence: %v", err)
	}
	if err := <-readErr; err != nil {
		t.Fatalf("echo after silence: %v", err)
	}
	deaf.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := deaf.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return // dropped, as it should be
			}
			t.Fatalf("a silent client was not dropped: %v", err)
		}
	}
}
