// Package stack is the vocabulary that crawlctl's providers and commands
// share: the providers' names, a stack's endpoints and ports, where a stack
// keeps its state, the record of a stack installed in a cluster, the
// autoscaling trigger, and the steps an operation is made of. It imports no
// provider, so pkg/cluster stands above them all.
package stack

import (
	"errors"
	"fmt"
	"time"
)

// Providers by name.
const (
	Auto  = "auto"
	Local = "local"
	Kind  = "kind"
	// Kube installs into an existing cluster from a kubeconfig; never
	// chosen by auto.
	Kube = "kube"
)

// Endpoints are the stack's addresses on this host.
type Endpoints struct {
	API        string `json:"api"`
	Prometheus string `json:"prometheus,omitempty"`
	Simulator  string `json:"simulator,omitempty"`
	Kafka      string `json:"kafka,omitempty"`
	Redis      string `json:"redis,omitempty"`
	Grid       string `json:"grid,omitempty"`
}

// Access is how seed and collect reach a stack.
type Access struct {
	Endpoints Endpoints
	// APIToken is the control API's token (empty: it needs none, as a
	// local stack's on loopback). Never printed: Endpoints are.
	APIToken string `json:"-"`
	// Hint says what to do when the endpoints do not answer (empty for a
	// local stack).
	Hint string
	// ScrapeInterval is how often the stack's metrics store scrapes.
	ScrapeInterval time.Duration
}

// Archive is what a stack that is no longer up left on disk, served for
// collect: its metrics (a Prometheus HTTP API) and its recorded runs.
type Archive struct {
	Prometheus string
	RunsDir    string
}

// ErrNotUp is returned when no stack of that name runs.
var ErrNotUp = errors.New("the stack is not up")

// NotUp phrases err, an ErrNotUp, for the user of stack name: a more
// specific error (a supervisor that died) as it is, the bare one with what
// to do.
func NotUp(name string, err error) error {
	if err == ErrNotUp {
		return fmt.Errorf("stack %q is not up: run `crawlctl up` first", name)
	}
	return err
}

// UsageError is bad input: a flag, a setting or a host that cannot work
// as asked. Commands exit 2 on it; nothing was changed.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is bad input.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// Trigger is KEDA's Kafka trigger as the stack uses it for workers: the
// chart's ScaledObjects and the local autoscaler take it from here.
type Trigger struct {
	// LagThreshold is the frontier lag one worker is for.
	LagThreshold int `json:"lag_threshold"`
	MinWorkers   int `json:"min_workers"`
	// PollInterval is how often the lag is read; Cooldown how long after
	// the last scale-up the workers may scale down.
	PollInterval time.Duration `json:"poll_interval"`
	Cooldown     time.Duration `json:"cooldown"`
}

// DefaultTrigger: a worker per 50 records of lag, polled every 5 s,
// scaled down 30 s after the last scale-up, at least one worker.
func DefaultTrigger() Trigger {
	return Trigger{LagThreshold: 50, MinWorkers: 1, PollInterval: 5 * time.Second, Cooldown: 30 * time.Second}
}
