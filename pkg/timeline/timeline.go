// Package timeline records the settings a stack runs with, each with the
// time it took effect, in the stack's state directory. `up` appends an
// entry when a stack starts and each time it applies new settings, so a
// run's snapshot is named and described by the settings that were in
// force while it ran, not guessed from metric labels.
package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// File is the timeline's name in the stack's state directory.
const File = "timeline.jsonl"

// Entry is the settings in force from At on.
type Entry struct {
	At time.Time `json:"at"`
	// Provider is local, kind or kube.
	Provider string `json:"provider"`
	// Proxies, ProxyAssignment, Partitions, GraphWriters and MaxWorkers are
	// the scenario facts a snapshot is named and compared by.
	Proxies         int    `json:"proxies"`
	ProxyAssignment string `json:"proxy_assignment"`
	Partitions      int    `json:"partitions"`
	GraphWriters    int    `json:"graph_writers"`
	MaxWorkers      int    `json:"max_workers"`
	// Stack is the provider's whole spec, Plan the budget plan.
	Stack any          `json:"stack,omitempty"`
	Plan  *budget.Plan `json:"plan,omitempty"`
}

// New is the entry for a plan applied now.
func New(provider string, plan *budget.Plan, assignment string, stack any) Entry {
	if assignment == "" {
		assignment = "pace"
	}
	return Entry{At: time.Now().UTC(), Provider: provider, Proxies: plan.Proxies, ProxyAssignment: assignment,
		Partitions: plan.Partitions, GraphWriters: plan.GraphWriters, MaxWorkers: min(plan.MaxWorkers, plan.Partitions),
		Stack: stack, Plan: plan}
}

// Append adds e to the timeline in dir.
func Append(dir string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, File), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("recording the stack's settings: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	return errors.Join(werr, f.Close())
}

// Read returns the timeline in dir, oldest first; none when there is no
// file. A line that does not decode (a write cut short by a crash) is
// skipped.
func Read(dir string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(dir, File))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil && !e.At.IsZero() {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, File), err)
	}
	return out, nil
}

// During returns the entries in force at some time in [from, to]: the last
// one at or before from, then every later one up to to. It is empty when
// the timeline starts after to.
func During(entries []Entry, from, to time.Time) []Entry {
	first := -1
	for i, e := range entries {
		if !e.At.After(from) {
			first = i
		}
	}
	if first < 0 {
		first = 0
	}
	var out []Entry
	for _, e := range entries[first:] {
		if e.At.After(to) {
			break
		}
		out = append(out, e)
	}
	return out
}
