package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/gridregistry"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/stack"
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
	Endpoints  stack.Endpoints       `json:"endpoints"`
	Components []ComponentStatus     `json:"components"`
	Replicas   map[string]Replicas   `json:"replicas"`
	LagTotal   int64                 `json:"frontier_lag_total"`
	Lag        []topics.PartitionLag `json:"frontier_lag"`
	Run        *runstate.Run         `json:"run,omitempty"`
	// Grid are the browser grid's workers with their counts.
	Grid []gridregistry.Worker `json:"grid_workers,omitempty"`
}

func (s *Supervisor) status(ctx context.Context) *Status {
	st := &Status{Provider: stack.Local, Name: s.spec.Name, PID: 0, Replicas: map[string]Replicas{}}
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
	lctx, cancel := context.WithTimeout(ctx, lagReadTimeout)
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

// WriteTable prints the components, the grid, the frontier's lag and the
// newest run.
func (st *Status) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "stack %q (%s, supervisor pid %d), api %s\n\n", st.Name, st.Provider, st.PID, st.Endpoints.API)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tREADY\tDESIRED\tMAX\tRESTARTS")
	restarts := map[string]int{}
	for _, c := range st.Components {
		restarts[c.Name] += c.Restarts
	}
	for _, name := range []string{budget.Proxy, budget.GraphWriter, budget.Worker, budget.GridProxy, budget.Browser} {
		r, ok := st.Replicas[name]
		if !ok && (name == budget.GridProxy || name == budget.Browser) {
			continue // no grid
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", name, r.Ready, r.Desired, r.Max, restarts[name])
	}
	tw.Flush()
	if len(st.Grid) > 0 {
		fmt.Fprintf(w, "\ngrid %s\n", st.Endpoints.Grid)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GRID WORKER\tSTATUS\tACTIVE\tLIFETIME")
		for _, g := range st.Grid {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d/%d\n", g.ID, g.Status, g.Active, g.MaxConcurrent, g.Lifetime, g.MaxLifetime)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nfrontier lag: %d", st.LagTotal)
	var busy []string
	for _, l := range st.Lag {
		if l.Lag > 0 {
			busy = append(busy, fmt.Sprintf("p%d=%d", l.Partition, l.Lag))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(busy, " "))
	}
	fmt.Fprintln(w)
	if r := st.Run; r != nil {
		c := r.Counters
		fmt.Fprintf(w, "run %s (%s): %s; enqueued %d, crawled %d, deduped %d, retried %d, dlq %d, edges written %d\n",
			r.ID, r.Name, r.State, c.Enqueued, c.Crawled, c.Deduped, c.Retried, c.DLQ, c.EdgesWritten)
	}
	return nil
}
