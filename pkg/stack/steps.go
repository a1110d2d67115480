package stack

import (
	"context"
	"fmt"
	"time"
)

// Printer gets the progress lines of an operation; nil prints nothing
// (`-q`).
type Printer func(line string)

// Print prints one line, formatted; nothing when p is nil.
func (p Printer) Print(format string, args ...any) {
	if p != nil {
		p(fmt.Sprintf(format, args...))
	}
}

// Detail prints a line inside a step (an image loading, a lock waited
// for), indented under the step lines.
func (p Printer) Detail(format string, args ...any) { p.Print("  • "+format, args...) }

// Step is one named action of an operation, as kind's create is a list of
// actions: "preflight", "create", "chart".
type Step struct {
	Name string
	// Do does it on the operation's context and says what it did, for
	// the step's line.
	Do func(ctx context.Context) (string, error)
}

// StepError is the failure of a step: it names the step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// RunSteps runs steps in order on ctx, one line each when it ends,
// "✓ name: what it did (duration)" or "✗ name (duration)", and stops at the
// first that fails, returning its error as a StepError. A cancelled ctx
// stops it before the next step.
func RunSteps(ctx context.Context, p Printer, steps ...Step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return &StepError{Step: s.Name, Err: err}
		}
		start := time.Now()
		what, err := s.Do(ctx)
		took := FormatDuration(time.Since(start))
		if err != nil {
			p.Print("✗ %s (%s)", s.Name, took)
			return &StepError{Step: s.Name, Err: err}
		}
		if what == "" {
			p.Print("✓ %s (%s)", s.Name, took)
		} else {
			p.Print("✓ %s: %s (%s)", s.Name, what, took)
		}
	}
	return nil
}

// FormatDuration rounds d for a person: <1ms, 12ms, 1.3s, 2m5s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
