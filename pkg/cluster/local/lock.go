package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/crawlctl/crawlctl/internal/proc"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// lockPollInterval is how often a crawlctl waiting for a stack's lock
// tries again.
const lockPollInterval = 100 * time.Millisecond

// lockStack serialises up, down and reloads of one stack between crawlctl
// processes: an exclusive flock on <name>.lock beside the stack's
// directory (outside it, so that --purge leaves it valid). It waits while
// another crawlctl holds it, saying so once, up to timeout.
func lockStack(ctx context.Context, dir string, timeout time.Duration, print stack.Printer) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	path := dir + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the stack's lock %s: %w", path, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !said {
			print.Detail("stack %q is being started, changed or stopped by another crawlctl: waiting for it", filepath.Base(dir))
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("stack %q stayed locked by another crawlctl (%s): %w", filepath.Base(dir), path, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}

// pidFile is the supervisor's identity in the state dir: "PID STARTTIME",
// flocked by the supervisor for as long as it runs. A supervisor that died
// (a crash, kill -9, a reboot) holds no lock, so its recorded pid is never
// trusted, whoever has that pid now.
const pidFile = "supervisor.pid"

// holdSupervisorLock takes the supervisor's lock and writes its identity,
// or says which supervisor runs the stack already. The lock lasts until the
// returned file is closed (or the process ends).
func holdSupervisorLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, pidFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if pid, _, rerr := readPIDFile(dir); rerr == nil {
			return nil, fmt.Errorf("another supervisor (pid %d) runs the stack in %s", pid, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", filepath.Join(dir, pidFile), err)
	}
	start, err := proc.StartTime(os.Getpid())
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(fmt.Sprintf("%d %d\n", os.Getpid(), start)), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func readPIDFile(dir string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s is damaged", filepath.Join(dir, pidFile))
	}
	if pid, err = strconv.Atoi(f[0]); err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(f[1], 10, 64)
	return pid, start, err
}

// supervisorPID is the pid of the supervisor that runs the stack in dir
// now, or 0 when none does. It is that supervisor's pid for certain: the
// supervisor holds its lock, and the process with that pid started when
// the supervisor did.
func supervisorPID(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		return 0, nil // nobody holds it: no supervisor runs
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return 0, fmt.Errorf("checking %s: %w", filepath.Join(dir, pidFile), err)
	}
	pid, start, err := readPIDFile(dir)
	if err != nil {
		return 0, nil // locked but not yet written: still starting
	}
	if now, err := proc.StartTime(pid); err != nil || now != start {
		return 0, nil // the lock holder is not the recorded pid: trust neither
	}
	return pid, nil
}
