package gridregistry

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is the registry of a single grid proxy without Redis.
type Memory struct {
	policy Policy
	now    func() time.Time

	mu      sync.Mutex
	workers map[string]*Worker
	leases  map[lease]time.Time // → expiry
}

type lease struct{ worker, session string }

// NewMemory returns an empty in-memory registry.
func NewMemory(p Policy) *Memory {
	return &Memory{policy: p, now: time.Now, workers: map[string]*Worker{}, leases: map[lease]time.Time{}}
}

func (m *Memory) Register(_ context.Context, w WorkerInfo, reset bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.workers[w.ID]
	if !ok {
		cur = &Worker{}
		m.workers[w.ID] = cur
	}
	cur.WorkerInfo, cur.Status, cur.Heartbeat = w, Available, m.now()
	if reset {
		cur.Lifetime = 0
	}
	return nil
}

func (m *Memory) Heartbeat(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[id]
	if !ok {
		return ErrUnknownWorker
	}
	w.Heartbeat = m.now()
	return nil
}

func (m *Memory) SetStatus(_ context.Context, id string, st Status) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[id]
	if !ok {
		return ErrUnknownWorker
	}
	w.Status = st
	return nil
}

func (m *Memory) Unregister(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.workers, id)
	return nil
}

// expire drops leases past their expiry, with their active counts.
func (m *Memory) expire(now time.Time) {
	for l, exp := range m.leases {
		if !now.Before(exp) {
			m.drop(l)
		}
	}
}

func (m *Memory) drop(l lease) {
	if _, ok := m.leases[l]; !ok {
		return
	}
	delete(m.leases, l)
	if w, ok := m.workers[l.worker]; ok && w.Active > 0 {
		w.Active--
	}
}

func (m *Memory) Select(_ context.Context, r Request) (Selection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expire(now)
	var live []candidate
	var ptrs []*Worker
	draining, group := 0, 0
	for _, w := range m.workers {
		if w.Browser != r.Browser || now.Sub(w.Heartbeat) > m.policy.Stale {
			continue
		}
		group++
		if w.Status == Draining {
			draining++
			continue
		}
		if w.Status != Available || slices.Contains(r.Exclude, w.ID) {
			continue
		}
		live = append(live, candidate{id: w.ID, active: w.Active, lifetime: w.Lifetime,
			maxConcurrent: w.MaxConcurrent, maxLifetime: w.MaxLifetime})
		ptrs = append(ptrs, w)
	}
	i, ok := choose(live, draining, group, m.policy.StaggerFrom)
	if !ok {
		return Selection{}, ErrNoWorker
	}
	w := ptrs[i]
	w.Active++
	w.Lifetime++
	m.leases[lease{w.ID, r.Session}] = now.Add(m.policy.Lease)
	sel := Selection{WorkerInfo: w.WorkerInfo, Lifetime: w.Lifetime, AtLimit: w.Lifetime >= w.MaxLifetime}
	if sel.AtLimit {
		w.Status = Draining
	}
	return sel, nil
}

func (m *Memory) Release(_ context.Context, workerID, session string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop(lease{workerID, session})
	return nil
}

func (m *Memory) Cancel(_ context.Context, workerID, session string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.leases[lease{workerID, session}]; !ok {
		return nil
	}
	m.drop(lease{workerID, session})
	if w, ok := m.workers[workerID]; ok && w.Lifetime > 0 {
		if w.Lifetime == w.MaxLifetime && w.Status == Draining {
			w.Status = Available
		}
		w.Lifetime--
	}
	return nil
}

func (m *Memory) Renew(_ context.Context, sessions map[string][]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp := m.now().Add(m.policy.Lease)
	for worker, ss := range sessions {
		for _, s := range ss {
			if _, ok := m.leases[lease{worker, s}]; ok {
				m.leases[lease{worker, s}] = exp
			}
		}
	}
	return nil
}

func (m *Memory) Workers(context.Context) ([]Worker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(m.now())
	out := make([]Worker, 0, len(m.workers))
	for _, w := range m.workers {
		out = append(out, *w)
	}
	sortWorkers(out)
	return out, nil
}

func (m *Memory) Close() error { return nil }
