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
)

// Provider is the local provider of one named stack.
type Provider struct {
	Dir string
	// Progress gets one line per step (nil: quiet).
	Progress func(format string, args ...any)
}

// New returns the provider of the stack called name.
func New(name string) (*Provider, error) {
	dir, err := StateDir(name)
	if err != nil {
		return nil, err
	}
	return &Provider{Dir: dir}, nil
}

func (p *Provider) step(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(format, args...)
	}
}

// UpResult says what Up did.
type UpResult struct {
	AlreadyUp bool
	Changed   bool // an up stack took new settings
	State     *State
	Plan      *budget.Plan
}

// Up starts the stack (a detached supervisor) and waits until every
// component is ready. A stack already up with the same spec is left as it
// is ("already up"); one up with other settings takes them in place (proxy,
// graph-writer and worker counts, partitions growing, proxy assignment),
// keeping the run in progress; the target, the simulator's time factor and
// the scrape interval need a down and up.
func (p *Provider) Up(ctx context.Context, spec Spec, timeout time.Duration) (*UpResult, error) {
	spec.defaults()
	plan, err := budget.Compute(spec.Budget)
	if err != nil {
		return nil, err // refused before anything starts
	}
	unlock, err := lockStack(ctx, p.Dir, timeout, p.step)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := ReadState(p.Dir)
	switch {
	case err == nil:
		if reflect.DeepEqual(st.Spec, spec) {
			return &UpResult{AlreadyUp: true, State: st, Plan: plan}, nil
		}
		return p.change(ctx, st, spec, plan, timeout)
	case !errors.Is(err, ErrNotUp):
		return nil, err
	}
	if pid, err := supervisorPID(p.Dir); err != nil {
		return nil, err
	} else if pid != 0 {
		return nil, fmt.Errorf("a supervisor (pid %d) runs stack %q but never reported ready: see %s, or stop it with crawlctl down",
			pid, spec.Name, filepath.Join(p.Dir, logDir, "supervisor.log"))
	}
	var died *DiedError
	if errors.As(err, &died) {
		p.step("the stack's previous supervisor (pid %d) had died: starting anew", died.PID)
	}
	os.Remove(filepath.Join(p.Dir, stateFile)) // a dead supervisor's
	p.step("preflight: plan fits: %d proxies, %d graph writer(s), up to %d workers", plan.Proxies, plan.GraphWriters, min(plan.MaxWorkers, plan.Partitions))
	if plan.GridWorkers > 0 {
		if err := playwright.Check(""); err != nil {
			return nil, fmt.Errorf("--grid-workers %d needs a Playwright browser server on this machine:\n%w", plan.GridWorkers, err)
		}
		p.step("preflight: browser grid: Node.js and Chromium found")
	}
	if err := os.MkdirAll(filepath.Join(p.Dir, logDir), 0o755); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	if err := writeJSON(filepath.Join(p.Dir, specFile), spec); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(exe, ".test") {
		// A test binary would run its tests again instead of a supervisor.
		return nil, fmt.Errorf("%s is a Go test binary and cannot be the supervisor: tests drive the real crawlctl binary", filepath.Base(exe))
	}
	logf, err := os.OpenFile(filepath.Join(p.Dir, logDir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "run", "supervisor", "--state-dir", p.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this shell
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the supervisor: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.step("supervisor started (pid %d); starting broker, Redis, simulator, API, proxies, graph writers, workers", pid)

	deadline := time.Now().Add(timeout)
	for {
		if st, err := ReadState(p.Dir); err == nil && st.PID == pid && adminReady(st) {
			p.step("ready")
			return &UpResult{State: st, Plan: plan}, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("the supervisor exited during start-up (%v): see %s", err, filepath.Join(p.Dir, logDir, "supervisor.log"))
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGTERM)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGTERM)
			return nil, fmt.Errorf("the stack was not ready within %v: see the logs in %s", timeout, filepath.Join(p.Dir, logDir))
		}
	}
}

// change hands new settings to a running supervisor and waits until it
// has applied them.
func (p *Provider) change(ctx context.Context, st *State, spec Spec, plan *budget.Plan, timeout time.Duration) (*UpResult, error) {
	if fixed := spec.fixedFields(st.Spec); len(fixed) > 0 {
		return nil, fmt.Errorf("stack %q is up, and %s cannot change while it is: run `crawlctl down`, then up again",
			spec.Name, strings.Join(fixed, ", "))
	}
	p.step("stack is up (pid %d): applying new settings: %d proxies, %d graph writer(s), up to %d workers",
		st.PID, plan.Proxies, plan.GraphWriters, min(plan.MaxWorkers, plan.Partitions))
	if err := writeJSON(filepath.Join(p.Dir, specFile), spec); err != nil {
		return nil, err
	}
	if err := syscall.Kill(st.PID, syscall.SIGHUP); err != nil {
		return nil, fmt.Errorf("signalling the supervisor: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if cur, err := ReadState(p.Dir); err == nil && reflect.DeepEqual(cur.Spec, spec) && adminReady(cur) {
			p.step("applied")
			return &UpResult{Changed: true, State: cur, Plan: plan}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the supervisor did not apply the new settings within %v: see %s", timeout,
				filepath.Join(p.Dir, logDir, "supervisor.log"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
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
// exits. purge also deletes the state directory (logs, graph store).
// Stopping a stack that is not up is not an error; the state a dead
// supervisor left is removed, and no process is signalled but the
// supervisor that holds the stack's lock.
func (p *Provider) Down(ctx context.Context, purge bool, timeout time.Duration) (bool, error) {
	if purge {
		if err := ownDir(p.Dir); err != nil {
			return false, err
		}
	}
	unlock, err := lockStack(ctx, p.Dir, timeout, p.step)
	if err != nil {
		return false, err
	}
	defer unlock()
	pid, err := supervisorPID(p.Dir)
	if err != nil {
		return false, err
	}
	wasUp := pid != 0
	if wasUp {
		p.step("stopping the supervisor (pid %d): workers drain, then graph writers and proxies stop", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return true, fmt.Errorf("signalling the supervisor: %w", err)
		}
		deadline := time.Now().Add(timeout)
		for proc.Alive(pid) {
			if time.Now().After(deadline) {
				return true, fmt.Errorf("the supervisor (pid %d) did not stop within %v", pid, timeout)
			}
			select {
			case <-ctx.Done():
				return true, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	} else {
		var died *DiedError
		if _, err := ReadState(p.Dir); errors.As(err, &died) {
			p.step("%v", died)
		}
		if err := os.Remove(filepath.Join(p.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("removing the stale state: %w", err)
		}
	}
	if purge {
		if err := os.RemoveAll(p.Dir); err != nil {
			return wasUp, fmt.Errorf("deleting %s: %w", p.Dir, err)
		}
		p.step("deleted %s", p.Dir)
	}
	return wasUp, nil
}

// Status reports the running stack.
func (p *Provider) Status(ctx context.Context) (*Status, error) {
	st, err := ReadState(p.Dir)
	if err != nil {
		return nil, err
	}
	return FetchStatus(ctx, st)
}
