package grid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/crawlctl/crawlctl/pkg/gridregistry"
)

// breakerFailures trips a worker's breaker (gobreaker's default trips on
// the 6th); breakerTimeout is how long it stays open before a probe.
const (
	breakerFailures = 5
	breakerTimeout  = 30 * time.Second
)

// health checks workers actively (GET /healthz, or /status for the
// workers this grid registers itself) and passively (dial failures). A
// worker is left out of selection while its last check failed or its
// breaker is open.
type health struct {
	opts    Options
	client  *http.Client
	command func(gridregistry.WorkerInfo)

	mu       sync.Mutex
	failing  map[string]bool
	breakers map[string]*gobreaker.CircuitBreaker[struct{}]
	static   map[string]staticWorker // by control URL
}

// staticWorker is what a grid registering workers itself last saw of one.
type staticWorker struct {
	id  string
	gen int // browser generation
}

func newHealth(opts Options, command func(gridregistry.WorkerInfo)) *health {
	return &health{
		opts:     opts,
		client:   &http.Client{Timeout: time.Second},
		command:  command,
		failing:  map[string]bool{},
		breakers: map[string]*gobreaker.CircuitBreaker[struct{}]{},
		static:   map[string]staticWorker{},
	}
}

func (h *health) breaker(id string) *gobreaker.CircuitBreaker[struct{}] {
	cb, ok := h.breakers[id]
	if !ok {
		cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        id,
			MaxRequests: 1,
			Timeout:     breakerTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerFailures },
			OnStateChange: func(name string, from, to gobreaker.State) {
				h.opts.Log.Warn("grid worker breaker", "worker", name, "from", from.String(), "to", to.String())
			},
		})
		h.breakers[id] = cb
	}
	return cb
}

// record feeds one check or dial result to the worker's breaker.
func (h *health) record(id string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing[id] = err != nil
	h.breaker(id).Execute(func() (struct{}, error) { return struct{}{}, err })
}

func (h *health) failed(id string, err error) { h.record(id, err) }
func (h *health) succeeded(id string)         { h.record(id, nil) }

// down lists the workers to leave out.
func (h *health) down() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, cb := range h.breakers {
		if h.failing[id] || cb.State() == gobreaker.StateOpen {
			out = append(out, id)
		}
	}
	return out
}

// breakerState is a worker's breaker state for listings.
func (h *health) breakerState(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cb, ok := h.breakers[id]; ok {
		return cb.State().String()
	}
	return gobreaker.StateClosed.String()
}

func (h *health) run(ctx context.Context) {
	t := time.NewTicker(h.opts.HealthInterval)
	defer t.Stop()
	for {
		h.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *health) checkAll(ctx context.Context) {
	static := map[string]bool{}
	for _, u := range h.opts.Workers {
		if id, ok := h.pollStatic(ctx, u); ok {
			static[id] = true
		}
	}
	ws, err := h.opts.Registry.Workers(ctx)
	if err != nil {
		h.opts.Log.Warn("listing grid workers", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		if static[w.ID] {
			continue
		}
		wg.Go(func() { h.record(w.ID, h.get(ctx, w.Control+"/healthz", nil)) })
		// The command may have been lost: say it again.
		if w.Lifetime >= w.MaxLifetime && w.Status == gridregistry.Available {
			wg.Go(func() { h.command(w.WorkerInfo) })
		}
	}
	wg.Wait()
}

// pollStatic reads a worker's /status and registers it: a new browser
// generation resets its lifetime count.
func (h *health) pollStatic(ctx context.Context, control string) (string, bool) {
	var st struct {
		gridregistry.WorkerInfo
		Status     gridregistry.Status
		Generation int
	}
	if err := h.get(ctx, control+"/status", &st); err != nil {
		// Unreachable: left out now, and its heartbeat stops here.
		h.mu.Lock()
		last, seen := h.static[control]
		h.mu.Unlock()
		if seen {
			h.record(last.id, err)
		}
		return last.id, seen
	}
	h.mu.Lock()
	reset := h.static[control] != staticWorker{st.ID, st.Generation}
	h.static[control] = staticWorker{st.ID, st.Generation}
	h.mu.Unlock()
	reg := h.opts.Registry
	var err error
	switch {
	case reset:
		err = reg.Register(ctx, st.WorkerInfo, true)
	default:
		if err = reg.Heartbeat(ctx, st.ID); errors.Is(err, gridregistry.ErrUnknownWorker) {
			err = reg.Register(ctx, st.WorkerInfo, false)
		}
	}
	if err == nil && st.Status == gridregistry.Draining {
		err = reg.SetStatus(ctx, st.ID, gridregistry.Draining)
	}
	if err != nil {
		h.opts.Log.Warn("registering a grid worker", "worker", st.ID, "err", err)
	}
	h.record(st.ID, nil)
	return st.ID, true
}

func (h *health) get(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	if into != nil {
		return json.NewDecoder(resp.Body).Decode(into)
	}
	return nil
}
