package stack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunSteps(t *testing.T) {
	boom := errors.New("boom")
	ok := func(what string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return what, nil }
	}
	tests := []struct {
		name    string
		steps   []Step
		lines   []string // prefixes, in order
		failing string   // the step the error names ("" for none)
	}{
		{"all pass", []Step{{"preflight", ok("fits")}, {"start", ok("")}},
			[]string{"✓ preflight: fits (", "✓ start ("}, ""},
		{"stops at the failure", []Step{{"preflight", ok("fits")},
			{"create", func(context.Context) (string, error) { return "", boom }}, {"never", ok("ran")}},
			[]string{"✓ preflight: fits (", "✗ create ("}, "create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := RunSteps(context.Background(), func(l string) { got = append(got, l) }, tt.steps...)
			if len(got) != len(tt.lines) {
				t.Fatalf("lines %q, want %d lines like %q", got, len(tt.lines), tt.lines)
			}
			for i, want := range tt.lines {
				if !strings.HasPrefix(got[i], want) || !strings.HasSuffix(got[i], ")") {
					t.Errorf("line %d = %q, want it to start with %q and end with the duration", i, got[i], want)
				}
			}
			var se *StepError
			switch {
			case tt.failing == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.failing != "" && (!errors.As(err, &se) || se.Step != tt.failing || !errors.Is(err, boom)):
				t.Fatalf("err = %v, want a StepError of %q wrapping boom", err, tt.failing)
			case tt.failing != "" && err.Error() != tt.failing+": boom":
				t.Errorf("message %q names no step", err)
			}
		})
	}
}

func TestRunStepsQuietAndCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	err := RunSteps(ctx, nil, Step{"first", func(context.Context) (string, error) { ran++; cancel(); return "", nil }},
		Step{"second", func(context.Context) (string, error) { ran++; return "", nil }})
	if ran != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("ran %d steps, err %v: want the cancel to stop before the second", ran, err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{300 * time.Microsecond: "<1ms", 12345 * time.Microsecond: "12ms", 1340 * time.Millisecond: "1.3s", 125400 * time.Millisecond: "2m5s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
