package hotrestart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/crawlctl/crawlctl/pkg/serve"
)

// Server is an HTTP server with lossless restarts: SIGHUP hands its
// listeners to a new copy of the process and drains this one; the end of
// the context drains it too. The egress proxy and the browser grid both run
// on it.
type Server struct {
	// Name labels the server in logs ("proxy", "grid").
	Name string
	// Listen is the main address; AdminListen, when set, a second one for
	// Admin (health and metrics).
	Listen, AdminListen string
	// HTTP serves the main listener: its handler and timeouts. Main, when
	// set, serves it instead (a server of its own, such as the egress
	// proxy's connection loop).
	HTTP *http.Server
	Main Serving
	// Admin is served on AdminListen; /healthz and /readyz are added.
	Admin *http.ServeMux
	// Health is set ready once serving and unready when draining.
	Health *serve.Health
	// Sessions are connections the handler took over (tunnels, WebSocket
	// sessions): a drain waits for them and closes the rest at its deadline.
	Sessions *Sessions
	// DrainTimeout bounds a drain; UpgradeTimeout how long the new process
	// may take to be ready.
	DrainTimeout, UpgradeTimeout time.Duration
	// PIDFile, when set, gets the serving process's pid (it changes on
	// SIGHUP).
	PIDFile string
	Log     *slog.Logger
	// OnDrained runs after the drain (close upstream pools and the like).
	OnDrained func()
}

// Serving is a server of the main listener other than an http.Server.
type Serving interface {
	// Serve accepts on ln until it is closed (then http.ErrServerClosed).
	Serve(ln net.Listener) error
	// Drain lets requests in flight finish, closing connections between
	// requests, until none is left or ctx ends.
	Drain(ctx context.Context) error
}

// httpServing is an http.Server with the lossless drain.
type httpServing struct {
	srv     *http.Server
	drainer *Drainer
}

func (h httpServing) Serve(ln net.Listener) error     { return h.srv.Serve(ln) }
func (h httpServing) Drain(ctx context.Context) error { return h.drainer.Drain(ctx, h.srv) }

// Run serves until ctx ends (drain and return nil) or a SIGHUP hands the
// listeners to a new process (drain and return nil). A failed hand-off
// keeps this process serving.
func (s *Server) Run(ctx context.Context) error {
	if s.DrainTimeout <= 0 {
		s.DrainTimeout = 30 * time.Second
	}
	if s.UpgradeTimeout <= 0 {
		s.UpgradeTimeout = 30 * time.Second
	}
	if s.Health == nil {
		s.Health = &serve.Health{}
	}
	if s.Sessions == nil {
		s.Sessions = &Sessions{}
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	ls, err := New()
	if err != nil {
		return err
	}
	ln, err := ls.Listen(s.Name, s.Listen)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	var admin *http.Server
	if s.AdminListen != "" {
		if adminLn, err = ls.Listen("admin", s.AdminListen); err != nil {
			ls.Close()
			return err
		}
		mux := s.Admin
		if mux == nil {
			mux = http.NewServeMux()
		}
		s.Health.Register(mux)
		admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	main := s.Main
	if main == nil {
		if s.HTTP.ErrorLog == nil {
			s.HTTP.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
		}
		main = httpServing{srv: s.HTTP, drainer: Track(s.HTTP)}
	}

	// SIGHUP is ours before anyone can know our pid (Ready, the pid file):
	// its default action would kill this process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, 2)
	go func() { errc <- main.Serve(ln) }()
	if admin != nil {
		go func() { errc <- admin.Serve(adminLn) }()
	}
	// A predecessor may hand its connections over: adopt them, if this
	// server can, and say so when ready.
	adopts := false
	adopted := make(chan struct{}) // closed once the predecessor is done
	if h := ls.Handoff(); h != nil {
		if ho, ok := main.(HandingOff); ok {
			adopts = true
			go func() {
				defer close(adopted)
				if err := h.Receive(ho.Adopt); err != nil {
					log.Warn("adopting the previous process's connections", "err", err)
				}
				h.Close()
			}()
		} else {
			h.Close()
		}
	}
	if !adopts {
		close(adopted)
	}
	if err := ready(adopts); err != nil {
		log.Warn("telling the previous process we are ready", "err", err)
	}
	s.Health.SetReady(true)
	s.writePID(log)
	log.Info(s.Name+" serving", "addr", ln.Addr().String(), "admin", s.AdminListen, "inherited", ls.Inherited())

	var handoff *Handoff // the successor's, if it adopts connections
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("draining", "deadline", s.DrainTimeout)
			break wait
		case <-hup:
			proc, h, err := ls.Upgrade(s.UpgradeTimeout)
			if err != nil {
				log.Error("restart failed; this process keeps serving", "err", err)
				continue
			}
			handoff = h
			log.Info("handed the listeners to the new process; draining", "new_pid", proc.Pid, "handing_off", h != nil)
			break wait
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", s.Name, err)
			}
		}
	}
	// Drain: stop accepting (our descriptors only: a successor keeps the
	// sockets), hand every connection over to a successor that adopts them
	// or let every request finish with Connection: close, then the
	// sessions the handler took over.
	s.Health.SetReady(false)
	ls.Close()
	dctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
	defer cancel()
	// The predecessor may still be handing connections over (one was
	// answering a request when it began): this process is not done, nor
	// its own successor's hand-off, until those came and went on too;
	// else the predecessor would hand them to nobody and close them.
	drain := main.Drain
	if ho, ok := main.(HandingOff); ok && handoff != nil {
		drain = func(ctx context.Context) error { return ho.HandOff(ctx, handoff) }
	}
	start := time.Now()
	err = drain(dctx)
	select {
	case <-adopted:
	default:
		select {
		case <-adopted:
		case <-dctx.Done():
		}
		err = errors.Join(err, drain(dctx)) // what came since
	}
	if handoff != nil {
		handoff.Close()
		log.Debug("handed the connections over", "took", time.Since(start))
	}
	if werr := s.Sessions.Wait(dctx); werr != nil {
		log.Warn("drain deadline passed; closing live sessions", "sessions", s.Sessions.Len())
		s.Sessions.CloseAll()
	}
	if admin != nil {
		admin.Close()
	}
	if s.OnDrained != nil {
		s.OnDrained()
	}
	if err != nil {
		log.Warn("drain deadline passed with requests in flight", "err", err)
	}
	return nil
}

func (s *Server) writePID(log *slog.Logger) {
	if s.PIDFile == "" {
		return
	}
	if err := os.WriteFile(s.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("writing pid file", "path", s.PIDFile, "err", err)
	}
}

// Sessions tracks connections a handler took over from the HTTP server
// (hijacked: CONNECT tunnels, WebSocket sessions), so a drain can wait for
// them and close what is left at its deadline.
type Sessions struct {
	mu   sync.Mutex
	live map[io.Closer]struct{}
	wg   sync.WaitGroup
}

// Add tracks c until the returned func is called (once, when the session
// ends).
func (s *Sessions) Add(c io.Closer) (done func()) {
	s.mu.Lock()
	if s.live == nil {
		s.live = map[io.Closer]struct{}{}
	}
	s.live[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.live, c)
			s.mu.Unlock()
			s.wg.Done()
		})
	}
}

// Len is the number of live sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Wait waits until no session is live, or ctx ends.
func (s *Sessions) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CloseAll closes every live session's connection.
func (s *Sessions) CloseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.Close()
	}
}
