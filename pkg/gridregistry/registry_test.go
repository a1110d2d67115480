package gridregistry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// impl is one registry implementation with a test hook that sets counts.
type impl struct {
	name string
	new  func(t *testing.T, p Policy) (Registry, func(id string, active, lifetime int))
}

var impls = []impl{
	{"memory", func(t *testing.T, p Policy) (Registry, func(string, int, int)) {
		m := NewMemory(p)
		return m, func(id string, active, lifetime int) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.workers[id].Active, m.workers[id].Lifetime = active, lifetime
		}
	}},
	// The local provider's embedded Redis-protocol server runs the same
	// scripts.
	{"miniredis", func(t *testing.T, p Policy) (Registry, func(string, int, int)) {
		return redisImpl(t, p, miniredis.RunT(t).Addr())
	}},
	{"redis", func(t *testing.T, p Policy) (Registry, func(string, int, int)) {
		return redisImpl(t, p, testenv.Redis(t))
	}},
}

func redisImpl(t *testing.T, p Policy, addr string) (Registry, func(string, int, int)) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return NewRedis(rdb, p), func(id string, active, lifetime int) {
		ctx := context.Background()
		rdb.HSet(ctx, keyActive, id, active)
		rdb.HSet(ctx, keyLifetime, id, lifetime)
	}
}

// w is a worker for the table: "A:20" is A with lifetime 20; "A:20/3"
// also has 3 active; a trailing "!" marks it draining.
type w string

func (s w) parse() (id string, active, lifetime int, draining bool) {
	str := string(s)
	draining = strings.HasSuffix(str, "!")
	str = strings.TrimSuffix(str, "!")
	id, counts, _ := strings.Cut(str, ":")
	lt, act, _ := strings.Cut(counts, "/")
	fmt.Sscan(lt, &lifetime)
	fmt.Sscan(act, &active)
	return id, active, lifetime, draining
}

func setup(t *testing.T, im impl, p Policy, maxLifetime int, workers ...w) Registry {
	t.Helper()
	reg, set := im.new(t, p)
	ctx := context.Background()
	for _, s := range workers {
		id, active, lifetime, draining := s.parse()
		info := WorkerInfo{ID: id, Endpoint: "ws://" + id, Control: "http://" + id, Browser: "chromium",
			MaxConcurrent: 5, MaxLifetime: maxLifetime}
		if err := reg.Register(ctx, info, true); err != nil {
			t.Fatal(err)
		}
		set(id, active, lifetime)
		if draining {
			if err := reg.SetStatus(ctx, id, Draining); err != nil {
				t.Fatal(err)
			}
		}
	}
	return reg
}

var testPolicy = Policy{Stale: time.Hour, Lease: time.Hour, StaggerFrom: 3}

func TestSelect(t *testing.T) {
	cases := []struct {
		name    string
		workers []w
		browser string
		exclude []string
		want    string // "" = ErrNoWorker
	}{
		{name: "all fresh: the tie goes to the smallest id", workers: []w{"C:0", "B:0", "A:0"}, want: "A"},
		{name: "highest lifetime under the margin", workers: []w{"A:10", "B:20", "C:5"}, want: "B"},
		{name: "a worker past the margin gives way", workers: []w{"A:40", "B:20", "C:5"}, want: "B"},
		{name: "equal lifetime: fewer active", workers: []w{"A:20/3", "B:20/1", "C:5"}, want: "B"},
		{name: "equal lifetime and active: smaller id", workers: []w{"B:20/1", "A:20/1", "C:5"}, want: "A"},
		{name: "all past the margin: fallback to the highest that can take one", workers: []w{"A:45", "B:40", "C:48/5"}, want: "A"},
		{name: "a full worker is skipped", workers: []w{"A:20/5", "B:10"}, want: "B"},
		{name: "a worker at its lifetime limit is skipped", workers: []w{"A:50", "B:10"}, want: "B"},
		// With C down (excluded) the margin is floor(50/2)=25: A at 30 is
		// past it. Counting C too (the reference) gives 16 and picks A.
		{name: "the margin counts live workers only", workers: []w{"A:30", "B:10", "C:0"}, exclude: []string{"C"}, want: "B"},
		{name: "a worker whose dial failed is excluded", workers: []w{"A:30", "B:10"}, exclude: []string{"B"}, want: "A"},
		{name: "while one drains, none is pushed to its limit", workers: []w{"A:50!", "B:49", "C:30"}, want: "C"},
		{name: "while one drains, the last session waits", workers: []w{"A:50!", "B:49", "C:49"}, want: ""},
		{name: "a worker excluded for a moment still counts in the group", workers: []w{"A:0", "B:50!", "C:49"}, exclude: []string{"A"}, want: ""},
		{name: "two workers are not held back", workers: []w{"A:50!", "B:49"}, want: "B"},
		{name: "draining workers take nothing", workers: []w{"A:0!", "B:0!"}, want: ""},
		{name: "another browser type", workers: []w{"A:0"}, browser: "firefox", want: ""},
		{name: "no workers", want: ""},
	}
	for _, im := range impls {
		for _, c := range cases {
			t.Run(im.name+"/"+c.name, func(t *testing.T) {
				reg := setup(t, im, testPolicy, 50, c.workers...)
				browser := c.browser
				if browser == "" {
					browser = "chromium"
				}
				sel, err := reg.Select(context.Background(), Request{Browser: browser, Session: "s1", Exclude: c.exclude})
				switch {
				case c.want == "" && !errors.Is(err, ErrNoWorker):
					t.Fatalf("got %+v, %v; want ErrNoWorker", sel, err)
				case c.want != "" && err != nil:
					t.Fatalf("got %v, want %s", err, c.want)
				case sel.ID != c.want:
					t.Fatalf("chose %q, want %q", sel.ID, c.want)
				}
				if c.want != "" && sel.Endpoint != "ws://"+c.want {
					t.Fatalf("endpoint %q", sel.Endpoint)
				}
			})
		}
	}
}

// TestStaggeredRestarts is the seed's table made a test: three workers
// under steady load (four sessions live, each released four sessions
// later), lifetime 50. The first worker reaches 50 while the others are
// still under the margin, and never do two drain at once.
func TestStaggeredRestarts(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			reg := setup(t, im, testPolicy, 50, "A:0", "B:0", "C:0")
			type live struct{ worker, session string }
			var window []live
			var restarts []string
			restartAt := map[string]int{} // worker → session number at which its restart completes
			for i := range 400 {
				for id, at := range restartAt {
					if i >= at {
						reg.Register(ctx, WorkerInfo{ID: id, Endpoint: "ws://" + id, Control: "http://" + id,
							Browser: "chromium", MaxConcurrent: 5, MaxLifetime: 50}, true)
						delete(restartAt, id)
					}
				}
				session := fmt.Sprint("s", i)
				sel, err := reg.Select(ctx, Request{Browser: "chromium", Session: session})
				if err != nil {
					t.Fatalf("session %d: %v (restarting: %v)", i, err, restartAt)
				}
				window = append(window, live{sel.ID, session})
				if len(window) > 4 {
					reg.Release(ctx, window[0].worker, window[0].session)
					window = window[1:]
				}
				if sel.AtLimit {
					ws, _ := reg.Workers(ctx)
					draining := 0
					for _, w := range ws {
						if w.Status == Draining {
							draining++
						}
						if len(restarts) == 0 && w.ID != sel.ID && w.Lifetime > 50-50/3 {
							t.Errorf("first restart of %s: %s is at %d, past the margin", sel.ID, w.ID, w.Lifetime)
						}
					}
					if draining != 1 {
						t.Fatalf("session %d: %d workers draining at once: %+v", i, draining, ws)
					}
					restarts = append(restarts, sel.ID)
					restartAt[sel.ID] = i + 6 // the browser takes a while to come back
				}
			}
			if len(restarts) < 6 {
				t.Fatalf("only %d restarts in 400 sessions: %v", len(restarts), restarts)
			}
			t.Logf("restart order: %v", restarts)
		})
	}
}

func TestLeasesExpireAndRelease(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			reg := setup(t, im, Policy{Stale: time.Hour, Lease: 2 * time.Second, StaggerFrom: 3}, 50, "A:0")
			for i := range 3 {
				if _, err := reg.Select(ctx, Request{Browser: "chromium", Session: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			// Session 0 ends; 1 is renewed by its proxy; 2's proxy died.
			reg.Release(ctx, "A", "0")
			reg.Release(ctx, "A", "0") // twice: no double count
			active := func() int {
				ws, err := reg.Workers(ctx)
				if err != nil || len(ws) != 1 {
					t.Fatalf("workers: %v %v", ws, err)
				}
				return ws[0].Active
			}
			if got := active(); got != 2 {
				t.Fatalf("after a release: %d active, want 2", got)
			}
			// Renewed well inside its 2s lease, session 1 stays; session 2's
			// lease runs out. Bounded: 40 renewals, 8 s.
			expired := false
			for range 40 {
				time.Sleep(200 * time.Millisecond)
				if err := reg.Renew(ctx, map[string][]string{"A": {"1"}}); err != nil {
					t.Fatal(err)
				}
				if active() == 1 {
					expired = true
					break
				}
			}
			if !expired {
				t.Fatalf("after the lease of a dead proxy's session: %d active, want 1", active())
			}
			ws, _ := reg.Workers(ctx)
			if ws[0].Lifetime != 3 {
				t.Fatalf("lifetime %d, want 3", ws[0].Lifetime)
			}
		})
	}
}

func TestCancelUndoesASelection(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			reg := setup(t, im, testPolicy, 10, "A:9")
			sel, err := reg.Select(ctx, Request{Browser: "chromium", Session: "s"})
			if err != nil || !sel.AtLimit {
				t.Fatalf("got %+v %v, want A at its limit", sel, err)
			}
			if err := reg.Cancel(ctx, "A", "s"); err != nil {
				t.Fatal(err)
			}
			reg.Cancel(ctx, "A", "s") // twice: undone once
			ws, _ := reg.Workers(ctx)
			if w := ws[0]; w.Active != 0 || w.Lifetime != 9 || w.Status != Available {
				t.Fatalf("after cancel: %+v, want active 0, lifetime 9, available", w)
			}
		})
	}
}

func TestStaleWorkerIsNotChosen(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			reg := setup(t, im, Policy{Stale: time.Second, Lease: time.Hour, StaggerFrom: 3}, 50, "A:30", "B:0")
			time.Sleep(1500 * time.Millisecond)
			if err := reg.Heartbeat(ctx, "B"); err != nil {
				t.Fatal(err)
			}
			sel, err := reg.Select(ctx, Request{Browser: "chromium", Session: "x"})
			if err != nil || sel.ID != "B" {
				t.Fatalf("got %+v %v, want B (A missed its heartbeats)", sel, err)
			}
			if err := reg.Heartbeat(ctx, "nobody"); !errors.Is(err, ErrUnknownWorker) {
				t.Fatalf("heartbeat of an unknown worker: %v", err)
			}
		})
	}
}

// TestConcurrentSelectionsNeverOverfill: many proxies selecting at once
// never give a worker more than its slots.
func TestConcurrentSelectionsNeverOverfill(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			reg := setup(t, im, testPolicy, 1000, "A:0", "B:0")
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Go(func() {
					sel, err := reg.Select(ctx, Request{Browser: "chromium", Session: fmt.Sprint(i)})
					if err == nil {
						mu.Lock()
						got[sel.ID]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if got["A"] != 5 || got["B"] != 5 {
				t.Fatalf("sessions per worker: %v, want 5 each", got)
			}
		})
	}
}
