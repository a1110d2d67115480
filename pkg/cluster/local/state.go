// Package local is the local provider: the crawl stack as processes on this
// machine, without Docker. `crawlctl up` starts a detached supervisor
// (`crawlctl run supervisor`) that hosts the Kafka-protocol broker (franz-go
// kfake, in memory), a Redis-protocol server (miniredis), the Open Library
// simulator and the control API, and runs the egress proxies, crawl workers
// and graph writers as child processes, restarting them when they die and
// scaling workers on frontier lag like KEDA's Kafka trigger.
package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Spec is what `up` asks the supervisor for (spec.json in the state dir):
// the plan up computed and the settings around it.
type Spec struct {
	Name string       `json:"name"`
	Plan *budget.Plan `json:"plan"`
	// Target is the crawl target; empty means the built-in simulator.
	Target string `json:"target,omitempty"`
	// SimTimeFactor scales the simulator's rate limits.
	SimTimeFactor float64 `json:"sim_time_factor"`
	// ProxyAssignment is the workers' --proxy-assignment (pace or hash).
	ProxyAssignment string `json:"proxy_assignment,omitempty"`
	// Trigger is KEDA's Kafka trigger for workers.
	stack.Trigger
	// ScrapeInterval is how often the metrics store scrapes.
	ScrapeInterval time.Duration `json:"scrape_interval"`
	// GridListen is the grid's address when the plan has one.
	GridListen string `json:"grid_listen,omitempty"`
}

// newSpec is the spec of stack name for plan and o.
func newSpec(name string, plan *budget.Plan, o stack.UpOptions) Spec {
	return Spec{Name: name, Plan: plan, Target: o.Target, SimTimeFactor: o.SimTimeFactor,
		ProxyAssignment: o.ProxyAssignment, Trigger: stack.DefaultTrigger(), ScrapeInterval: o.ScrapeInterval}
}

// fixedFields names what cannot change while a stack is up.
func (s Spec) fixedFields(o Spec) []string {
	var out []string
	if s.Target != o.Target {
		out = append(out, "--target")
	}
	if s.SimTimeFactor != o.SimTimeFactor {
		out = append(out, "--sim-time-factor")
	}
	if s.ScrapeInterval != o.ScrapeInterval {
		out = append(out, "--scrape-interval")
	}
	if s.GridListen != o.GridListen && s.GridListen != "" && o.GridListen != "" {
		out = append(out, "--grid-listen")
	}
	if s.Plan.Partitions < o.Plan.Partitions {
		out = append(out, "--partitions (it can grow, not shrink)")
	}
	return out
}

// State is what the supervisor reports (state.json in the state dir).
type State struct {
	// Spec is the spec the supervisor runs now (it changes when `up`
	// applies new settings).
	Spec      Spec            `json:"spec"`
	PID       int             `json:"pid"`
	StartedAt time.Time       `json:"started_at"`
	Admin     string          `json:"admin"` // the supervisor's own /status, /readyz, /metrics
	Endpoints stack.Endpoints `json:"endpoints"`
}

const (
	specFile  = "spec.json"
	stateFile = "state.json"
	logDir    = "logs"
	// tsdbDir is the metrics store's, runsDir where each run created is
	// recorded (runstate.SaveRun): both outlive the stack.
	tsdbDir = "tsdb"
	runsDir = "runs"
)

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// DiedError is the state a supervisor left when it died (a crash, kill -9,
// a reboot): it is reported, never trusted or signalled. It is a stack.ErrNotUp.
type DiedError struct {
	Dir       string
	PID       int
	StartedAt time.Time
	// LastWrite is when the metrics store last wrote: about when it died.
	LastWrite time.Time
}

func (e *DiedError) Error() string {
	msg := fmt.Sprintf("stack %q is not up: its supervisor (pid %d, up since %s) died", filepath.Base(e.Dir), e.PID,
		e.StartedAt.Local().Format(time.DateTime))
	if !e.LastWrite.IsZero() {
		msg += fmt.Sprintf(" at about %s (its metrics' last write)", e.LastWrite.Local().Format(time.DateTime))
	}
	return msg + fmt.Sprintf("; the run it was crawling is lost with its in-memory broker and Redis, its metrics and graph stay in %s. "+
		"`crawlctl up` starts the stack anew; `crawlctl down --purge` deletes what is left", e.Dir)
}

// Is makes a DiedError a stack.ErrNotUp.
func (e *DiedError) Is(target error) bool { return target == stack.ErrNotUp }

// ReadState returns the running stack's state. Its pid is trusted only
// while the supervisor that wrote it holds its lock (supervisorPID).
func ReadState(dir string) (*State, error) {
	pid, err := supervisorPID(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, stateFile)
	var st State
	if err := readJSON(path, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, stack.ErrNotUp
		}
		if pid == 0 {
			return nil, fmt.Errorf("%s is damaged (%v) and no supervisor runs the stack: `crawlctl down --purge` deletes the stack's state", path, err)
		}
		return nil, fmt.Errorf("%s is damaged (%v) while the stack's supervisor (pid %d) runs: `crawlctl down` stops it", path, err, pid)
	}
	switch {
	case pid == 0:
		return nil, &DiedError{Dir: dir, PID: st.PID, StartedAt: st.StartedAt, LastWrite: lastWrite(filepath.Join(dir, tsdbDir))}
	case st.PID != pid:
		return nil, stack.ErrNotUp // a new supervisor is starting; the state is its predecessor's
	}
	return &st, nil
}

// lastWrite is the newest modification time of the files below dir.
func lastWrite(dir string) time.Time {
	var newest time.Time
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	return newest
}
