package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// The local provider's waits, unless the caller gives its own.
const (
	// DefaultUpTimeout bounds the wait for a stack to be ready.
	DefaultUpTimeout = 2 * time.Minute
	// DefaultDownTimeout bounds the wait for a supervisor to drain and
	// stop.
	DefaultDownTimeout = 2 * time.Minute
	// statePollInterval is how often up and down look at the state a
	// supervisor reports.
	statePollInterval = 50 * time.Millisecond
)

// Provider is the local provider of one named stack.
type Provider struct {
	name, dir string
	print     stack.Printer
}

// Option configures a Provider.
type Option func(*Provider)

// WithPrinter gets the progress lines (nil: quiet).
func WithPrinter(p stack.Printer) Option { return func(pr *Provider) { pr.print = p } }

// New returns the provider of the stack called name.
func New(name string, opts ...Option) (*Provider, error) {
	dir, err := stack.Dir(name)
	if err != nil {
		return nil, err
	}
	p := &Provider{name: name, dir: dir}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// UpReport is what Up did: the state of the stack now.
type UpReport struct {
	*State
	// Dir is the stack's state directory.
	Dir       string `json:"state_dir"`
	AlreadyUp bool   `json:"already_up,omitempty"`
	Changed   bool   `json:"changed,omitempty"` // an up stack took new settings
}

// WriteTable prints the endpoints.
func (r *UpReport) WriteTable(w io.Writer) error {
	e := r.Endpoints
	fmt.Fprintf(w, "stack %q is up (local, supervisor pid %d, state in %s)\n", r.Spec.Name, r.PID, r.Dir)
	fmt.Fprintf(w, "  api:        %s\n", e.API)
	fmt.Fprintf(w, "  prometheus: %s (PromQL HTTP API)\n", e.Prometheus)
	if e.Simulator != "" {
		fmt.Fprintf(w, "  simulator:  %s\n", e.Simulator)
	}
	if e.Grid != "" {
		fmt.Fprintf(w, "  grid:       %s (chromium.connect)\n", e.Grid)
	}
	fmt.Fprintf(w, "  kafka:      %s (in memory)\n  redis:      %s (in memory)\n", e.Kafka, e.Redis)
	_, err := fmt.Fprintf(w, "next: crawlctl seed --count 20\n")
	return err
}

// Up starts the stack (a detached supervisor) and waits until every
// component is ready. A stack already up with the same settings is left as
// it is ("already up"); one up with other settings takes them in place
// (proxy, graph-writer and worker counts, partitions growing, proxy
// assignment), keeping the run in progress; the target, the simulator's
// time factor and the scrape interval need a down and up.
//
// Its steps: preflight (the stack's lock and state, the grid's browser),
// then spec, supervisor, ready for a new stack, or spec, reload for one
// that is up.
func (p *Provider) Up(ctx context.Context, plan *budget.Plan, o stack.UpOptions) (stack.Report, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultUpTimeout
	}
	spec := newSpec(p.name, plan, o)
	var (
		unlock = func() {}
		st     *State
	)
	defer func() { unlock() }()
	err := stack.RunSteps(ctx, p.print, stack.Step{Name: "preflight", Do: func(ctx context.Context) (string, error) {
		var err error
		if st, err = p.preflight(ctx, o.Timeout, &unlock); err != nil {
			return "", err
		}
		what := fmt.Sprintf("plan fits: %d proxies, %d graph writer(s), up to %d workers", plan.Proxies, plan.GraphWriters, min(plan.MaxWorkers, plan.Partitions))
		if plan.GridWorkers == 0 {
			return what, nil
		}
		running := ""
		if st != nil {
			running = st.Spec.GridListen
		}
		if running == "" {
			if err := playwright.Check(""); err != nil {
				return "", fmt.Errorf("--grid-workers %d needs a Playwright browser server on this machine:\n%w", plan.GridWorkers, err)
			}
		}
		addr, note, err := gridListen(o.GridListen, running, defaultGridListen)
		if err != nil {
			return "", err
		}
		if note != "" {
			p.print.Detail("%s", note)
		}
		spec.GridListen = addr
		return what + "; Node.js and Chromium found, the grid on ws://" + addr + "/", nil
	}})
	switch {
	case err != nil:
		return nil, err
	case st != nil && reflect.DeepEqual(st.Spec, spec):
		p.print.Print("✓ already up (pid %d)", st.PID)
		return &UpReport{State: st, Dir: p.dir, AlreadyUp: true}, nil
	case st != nil:
		return p.change(ctx, st, spec, o.Timeout)
	}
	return p.start(ctx, spec, o.Timeout)
}

// preflight takes the stack's lock (unlock releases it) and returns the
// state of the stack when it is up.
func (p *Provider) preflight(ctx context.Context, timeout time.Duration, unlock *func()) (*State, error) {
	if r, err := stack.ReadRecord(p.dir); err != nil {
		return nil, err
	} else if r != nil {
		return nil, stack.Usagef("stack %q is installed in the cluster at %s (namespace %s): run `crawlctl down` first, or name another stack with --name",
			p.name, r.Server, r.Namespace)
	}
	u, err := lockStack(ctx, p.dir, timeout, p.print)
	if err != nil {
		return nil, err
	}
	*unlock = u
	st, err := ReadState(p.dir)
	switch {
	case err == nil:
		return st, nil
	case !errors.Is(err, stack.ErrNotUp):
		return nil, err
	}
	if pid, err := supervisorPID(p.dir); err != nil {
		return nil, err
	} else if pid != 0 {
		return nil, fmt.Errorf("a supervisor (pid %d) runs stack %q but never reported ready: see %s, or stop it with crawlctl down",
			pid, p.name, p.logPath("supervisor"))
	}
	var died *DiedError
	if errors.As(err, &died) {
		p.print.Detail("the stack's previous supervisor (pid %d) had died: starting anew", died.PID)
	}
	return nil, nil
}

func (p *Provider) logPath(component string) string {
	return filepath.Join(p.dir, logDir, component+".log")
}

// start starts a supervisor for spec and waits until it reports ready.
func (p *Provider) start(ctx context.Context, spec Spec, timeout time.Duration) (stack.Report, error) {
	var (
		pid    int
		exited = make(chan error, 1)
		st     *State
	)
	err := stack.RunSteps(ctx, p.print,
		stack.Step{Name: "spec", Do: func(context.Context) (string, error) {
			os.Remove(filepath.Join(p.dir, stateFile)) // a dead supervisor's
			if err := os.MkdirAll(filepath.Join(p.dir, logDir), 0o755); err != nil {
				return "", fmt.Errorf("creating the state directory: %w", err)
			}
			path := filepath.Join(p.dir, specFile)
			return path, writeJSON(path, spec)
		}},
		stack.Step{Name: "supervisor", Do: func(context.Context) (string, error) {
			var err error
			pid, err = p.startSupervisor(exited, timeout)
			return fmt.Sprintf("pid %d, log %s", pid, p.logPath("supervisor")), err
		}},
		stack.Step{Name: "ready", Do: func(ctx context.Context) (string, error) {
			var err error
			st, err = p.waitState(ctx, timeout, exited, func(st *State) bool { return st.PID == pid })
			if err != nil {
				if !errors.Is(err, errExited) {
					syscall.Kill(pid, syscall.SIGTERM) // ours: we started it, and it has not been reaped
				}
				return "", err
			}
			return "broker, Redis, simulator, API, proxies, graph writers and workers answer", nil
		}})
	if err != nil {
		return nil, err
	}
	return &UpReport{State: st, Dir: p.dir}, nil
}

// startSupervisor starts `crawlctl run supervisor` detached, its exit
// reported on exited.
func (p *Provider) startSupervisor(exited chan<- error, timeout time.Duration) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if strings.HasSuffix(exe, ".test") {
		// A test binary would run its tests again instead of a supervisor.
		return 0, fmt.Errorf("%s is a Go test binary and cannot be the supervisor: tests drive the real crawlctl binary", filepath.Base(exe))
	}
	logf, err := os.OpenFile(p.logPath("supervisor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "run", "supervisor", "--state-dir", p.dir, "--ready-timeout", timeout.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this shell
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the supervisor: %w", err)
	}
	go func() { exited <- cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// errExited is a supervisor exiting while up waits for it.
var errExited = errors.New("the supervisor exited")

// waitState waits until the supervisor reports a state that done accepts
// and its admin endpoint is ready.
func (p *Provider) waitState(ctx context.Context, timeout time.Duration, exited <-chan error, done func(*State) bool) (*State, error) {
	deadline := time.Now().Add(timeout)
	for {
		if st, err := ReadState(p.dir); err == nil && done(st) && adminReady(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the stack was not ready within %v: see the logs in %s", timeout, filepath.Join(p.dir, logDir))
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("%w (%v): see %s", errExited, err, p.logPath("supervisor"))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(statePollInterval):
		}
	}
}

// change hands new settings to a running supervisor and waits until it
// has applied them.
func (p *Provider) change(ctx context.Context, st *State, spec Spec, timeout time.Duration) (stack.Report, error) {
	if fixed := spec.fixedFields(st.Spec); len(fixed) > 0 {
		return nil, stack.Usagef("stack %q is up, and %s cannot change while it is: run `crawlctl down`, then up again",
			spec.Name, strings.Join(fixed, ", "))
	}
	plan := spec.Plan
	var cur *State
	err := stack.RunSteps(ctx, p.print,
		stack.Step{Name: "spec", Do: func(context.Context) (string, error) {
			return fmt.Sprintf("new settings for the running stack: %d proxies, %d graph writer(s), up to %d workers",
				plan.Proxies, plan.GraphWriters, min(plan.MaxWorkers, plan.Partitions)), writeJSON(filepath.Join(p.dir, specFile), spec)
		}},
		stack.Step{Name: "reload", Do: func(ctx context.Context) (string, error) {
			if err := syscall.Kill(st.PID, syscall.SIGHUP); err != nil { // it holds the supervisor lock: ours
				return "", fmt.Errorf("signalling the supervisor: %w", err)
			}
			var err error
			cur, err = p.waitState(ctx, timeout, nil, func(cur *State) bool { return reflect.DeepEqual(cur.Spec, spec) })
			if err != nil {
				return "", fmt.Errorf("the supervisor (pid %d) did not apply the new settings: %w", st.PID, err)
			}
			return fmt.Sprintf("supervisor pid %d applied them; runs in progress continue", st.PID), nil
		}})
	if err != nil {
		return nil, err
	}
	return &UpReport{State: cur, Dir: p.dir, Changed: true}, nil
}

func adminReady(st *State) bool {
	resp, err := (&http.Client{Timeout: time.Second}).Get(st.Admin + "/readyz")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Down stops the stack: the supervisor drains and stops every child, then
// exits. o.Purge also deletes the state directory (logs, graph store).
// Stopping a stack that is not up is not an error; the state a dead
// supervisor left is removed, and no process is signalled but the
// supervisor that holds the stack's lock.
func (p *Provider) Down(ctx context.Context, o stack.DownOptions) (bool, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultDownTimeout
	}
	if o.Purge {
		if err := stack.OwnDir(p.dir); err != nil {
			return false, err
		}
	}
	unlock, err := lockStack(ctx, p.dir, o.Timeout, p.print)
	if err != nil {
		return false, err
	}
	defer unlock()
	pid, err := supervisorPID(p.dir)
	if err != nil {
		return false, err
	}
	wasUp := pid != 0
	if wasUp {
		if err := p.stopSupervisor(ctx, pid, o.Timeout); err != nil {
			return true, err
		}
	} else {
		var died *DiedError
		switch _, err := ReadState(p.dir); {
		case errors.As(err, &died):
			p.print.Detail("%v", died)
		case err != nil && !errors.Is(err, stack.ErrNotUp):
			p.print.Detail("removing the stack's unreadable state (no supervisor holds the stack): %v", err)
		}
		if err := os.Remove(filepath.Join(p.dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("removing the stale state: %w", err)
		}
	}
	if o.Purge {
		if err := stack.Purge(p.dir, p.print); err != nil {
			return wasUp, err
		}
	}
	if wasUp {
		p.print.Print("✓ stack %q is down", p.name)
	} else {
		p.print.Print("✓ stack %q was not up", p.name)
	}
	return wasUp, nil
}

// stopSupervisor signals the supervisor, which holds the stack's lock
// (supervisorPID proved it ours), and waits for it to exit.
func (p *Provider) stopSupervisor(ctx context.Context, pid int, timeout time.Duration) error {
	p.print.Detail("stopping the supervisor (pid %d): workers drain, then graph writers and proxies stop", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling the supervisor: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for proc.Alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the supervisor (pid %d) did not stop within %v", pid, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(statePollInterval):
		}
	}
	return nil
}

// Status reports the running stack.
func (p *Provider) Status(ctx context.Context) (stack.Report, error) {
	st, err := ReadState(p.dir)
	if err != nil {
		return nil, stack.NotUp(p.name, err)
	}
	return FetchStatus(ctx, st)
}

// Access is where the running stack answers.
func (p *Provider) Access(context.Context) (*stack.Access, error) {
	st, err := ReadState(p.dir)
	if err != nil {
		return nil, stack.NotUp(p.name, err)
	}
	return &stack.Access{Endpoints: st.Endpoints, ScrapeInterval: st.Spec.ScrapeInterval}, nil
}
