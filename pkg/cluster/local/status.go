package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// ComponentStatus is one process of the stack.
type ComponentStatus struct {
	Name     string `json:"name"`
	Instance int    `json:"instance"`
	PID      int    `json:"pid"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
}

// Replicas of a scaled component.
type Replicas struct {
	Desired int `json:"desired"`
	Ready   int `json:"ready"`
	Max     int `json:"max"`
}

// Status is what `crawlctl status` shows.
type Status struct {
	Provider   string                `json:"provider"`
	Name       string                `json:"name"`
	PID        int                   `json:"pid"`
	Endpoints  cluster.Endpoints     `json:"endpoints"`
	Components []ComponentStatus     `json:"components"`
	Replicas   map[string]Replicas   `json:"replicas"`
	LagTotal   int64                 `json:"frontier_lag_total"`
	Lag        []topics.PartitionLag `json:"frontier_lag"`
	Run        *runstate.Run         `json:"run,omitempty"`
	// Grid are the browser grid's workers with their counts.
	Grid []gridregistry.Worker `json:"grid_workers,omitempty"`
}

func (s *Supervisor) status(ctx context.Context) *Status {
	st := &Status{Provider: cluster.Local, Name: s.spec.Name, PID: 0, Replicas: map[string]Replicas{}}
	for _, c := range s.allChildren() {
		c.mu.Lock()
		restarts := c.restarts
		c.mu.Unlock()
		st.Components = append(st.Components, ComponentStatus{Name: c.component, Instance: c.index, PID: c.pid(), Ready: c.ready(), Restarts: restarts})
	}
	s.mu.Lock()
	counts := map[string]int{}
	for comp, cs := range s.children {
		counts[comp] = len(cs)
	}
	s.mu.Unlock()
	for _, c := range st.Components {
		r := st.Replicas[c.Name]
		if c.Ready {
			r.Ready++
		}
		st.Replicas[c.Name] = r
	}
	for comp, n := range counts {
		r := st.Replicas[comp]
		r.Desired, r.Max = n, n
		if comp == compWorker {
			r.Max = s.maxWorkers()
		}
		st.Replicas[comp] = r
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if lag, err := topics.Lag(lctx, s.adm, topics.WorkerGroup, topics.Frontier); err == nil {
		st.Lag = lag
		for _, l := range lag {
			st.LagTotal += l.Lag
		}
	}
	if runs, err := s.runs.List(lctx, 1); err == nil && len(runs) > 0 {
		st.Run = runs[0]
	}
	if s.plan.GridWorkers > 0 {
		if ws, err := gridregistry.NewRedis(s.runs.Client(), gridregistry.DefaultPolicy).Workers(lctx); err == nil {
			st.Grid = ws
		}
	}
	return st
}

func (s *Supervisor) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.status(r.Context()))
}

// FetchStatus asks a running supervisor.
func FetchStatus(ctx context.Context, st *State) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.Admin+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the supervisor (pid %d) for its status: %w", st.PID, err)
	}
	defer resp.Body.Close()
	var out Status
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the supervisor's status: %w", err)
	}
	out.PID, out.Endpoints = st.PID, st.Endpoints
	return &out, nil
}
