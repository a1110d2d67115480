// Package gridregistry is the browser grid's registry: which browser
// workers exist, their active and lifetime session counts, and the
// lifetime-first selection of a worker for a new session. Browser workers
// register and heartbeat; grid proxies select, renew and release.
//
// Two implementations keep the same semantics: Redis (the seed's hashes
// cluster:active_connections and cluster:lifetime_connections, one hash per
// worker, selection atomic in one Lua script with its keys declared, so
// several grid proxies may share it) and Memory (one grid proxy alone).
//
// Counts never drift: each session holds a lease that its proxy renews;
// when a proxy dies its leases expire and the active counts drop with them.
package gridregistry

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Status is a worker's state.
type Status string

const (
	// Available workers take new sessions.
	Available Status = "available"
	// Draining workers take none: they finish their live sessions and
	// restart their browser.
	Draining Status = "draining"
)

// WorkerInfo is what a browser worker registers.
type WorkerInfo struct {
	ID string `json:"id"`
	// Endpoint is the WebSocket URL sessions are relayed to.
	Endpoint string `json:"endpoint"`
	// Control is the worker's HTTP base URL (health, shutdown).
	Control       string `json:"control"`
	Browser       string `json:"browser"`
	MaxConcurrent int    `json:"maxConcurrent"`
	MaxLifetime   int    `json:"maxLifetime"`
}

// Worker is a registered worker with its state and counts.
type Worker struct {
	WorkerInfo
	Status    Status    `json:"status"`
	Heartbeat time.Time `json:"heartbeat"`
	Active    int       `json:"active"`
	Lifetime  int       `json:"lifetime"`
}

// Request asks for a worker for one new session.
type Request struct {
	Browser string
	// Session identifies the session's lease.
	Session string
	// Exclude are workers this proxy knows to be down or that failed a
	// dial for this request.
	Exclude []string
}

// Selection is the worker chosen for a session, with its lifetime count
// including this session.
type Selection struct {
	WorkerInfo
	Lifetime int
	// AtLimit: this session is the worker's last; the worker is marked
	// draining and should be told to restart.
	AtLimit bool
}

// ErrNoWorker means no worker can take the session now.
var ErrNoWorker = errors.New("no available servers")

// ErrUnknownWorker means a heartbeat came for a worker the registry does
// not have (it restarted, or the worker was removed): register again.
var ErrUnknownWorker = errors.New("worker is not registered")

// Registry is the shared state of a grid.
type Registry interface {
	// Register adds or refreshes a worker as available; reset zeroes its
	// lifetime count (a fresh browser).
	Register(ctx context.Context, w WorkerInfo, reset bool) error
	// Heartbeat marks the worker alive now.
	Heartbeat(ctx context.Context, id string) error
	// SetStatus changes a worker's status.
	SetStatus(ctx context.Context, id string, st Status) error
	// Unregister removes a worker.
	Unregister(ctx context.Context, id string) error
	// Select picks a worker for a session and counts it (active and
	// lifetime) atomically, or returns ErrNoWorker.
	Select(ctx context.Context, r Request) (Selection, error)
	// Release ends a session's lease and its active count.
	Release(ctx context.Context, workerID, session string) error
	// Cancel undoes a selection whose session never started (the dial
	// failed): the lease, the active and the lifetime count, and the
	// draining mark if this selection set it.
	Cancel(ctx context.Context, workerID, session string) error
	// Renew extends the leases of live sessions (worker id → sessions).
	Renew(ctx context.Context, sessions map[string][]string) error
	// Workers lists every registered worker, sorted by id.
	Workers(ctx context.Context) ([]Worker, error)
	Close() error
}

// Policy are the timings and the stagger rule, the same for both
// implementations.
type Policy struct {
	// Stale: a worker whose last heartbeat is older is not chosen (the
	// reference waited for a 60 s key expiry instead).
	Stale time.Duration
	// Lease: a session whose proxy has not renewed it for this long stops
	// counting as active.
	Lease time.Duration
	// StaggerFrom: in a group of at least this many workers, while one
	// drains no other is given the session that would start its drain.
	StaggerFrom int
}

// DefaultPolicy: heartbeats every 5 s, stale after three missed; leases
// renewed every 10 s.
var DefaultPolicy = Policy{Stale: 15 * time.Second, Lease: 30 * time.Second, StaggerFrom: 3}

// candidate is a worker's view for selection.
type candidate struct {
	id                         string
	active, lifetime           int
	maxConcurrent, maxLifetime int
}

// choose is lifetime-first selection (the seed's "Scaling Workers"),
// repaired; the Lua script in redis.go is the same algorithm, and the
// registry tests run one table against both.
//
//   - live are the fresh, available, not excluded workers of the browser;
//     draining counts the fresh draining ones; group counts every fresh
//     one (a worker excluded for a moment is still part of the group).
//   - margin = max(1, floor(maxLifetime / len(live))): over live workers
//     only (the reference counted dead ones too).
//   - Candidates can take one more (active < maxConcurrent, lifetime <
//     maxLifetime). While a worker drains in a group of StaggerFrom or
//     more, a session that would bring another to its limit waits instead.
//   - Primary: candidates under maxLifetime - margin; fallback: any
//     candidate. Either way the highest lifetime wins, then fewer active,
//     then the smaller id (deterministic; the reference picked at random).
func choose(live []candidate, draining, group, staggerFrom int) (int, bool) {
	best, bestPrimary := -1, false
	for i, c := range live {
		if c.active >= c.maxConcurrent || c.lifetime >= c.maxLifetime {
			continue
		}
		if draining > 0 && group >= staggerFrom && c.lifetime+1 >= c.maxLifetime {
			continue
		}
		margin := max(1, c.maxLifetime/len(live))
		primary := c.lifetime < c.maxLifetime-margin
		if best < 0 || (primary && !bestPrimary) || (primary == bestPrimary && better(c, live[best])) {
			best, bestPrimary = i, primary
		}
	}
	return best, best >= 0
}

// better orders candidates: higher lifetime, fewer active, smaller id.
func better(a, b candidate) bool {
	return cmp.Or(-cmp.Compare(a.lifetime, b.lifetime), cmp.Compare(a.active, b.active), cmp.Compare(a.id, b.id)) < 0
}

func sortWorkers(ws []Worker) {
	slices.SortFunc(ws, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
}
