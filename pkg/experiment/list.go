package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Entry is a past experiment under the output root.
type Entry struct {
	Name      string   `json:"name"`
	Dir       string   `json:"dir"`
	Scenarios []string `json:"scenarios"`
	Repeats   int      `json:"repeats"`
	// Complete and Runs count the runs with a whole snapshot, of those
	// the file asks for.
	Complete int `json:"complete"`
	Runs     int `json:"runs"`
	// State is complete (every run, and the report) or partial.
	State string `json:"state"`
}

// Entries are the listing of List.
type Entries []Entry

// WriteTable prints a row per experiment.
func (es Entries) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tRUNS\tSCENARIOS\tDIR")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", e.Name, e.State, e.Complete, e.Runs, strings.Join(e.Scenarios, ","), e.Dir)
	}
	return tw.Flush()
}

// List reads the experiments under out: every folder with the
// experiment.json Run keeps.
func List(out string) (Entries, error) {
	dirs, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return Entries{}, nil
	}
	if err != nil {
		return nil, err
	}
	es := Entries{}
	for _, d := range dirs {
		dir := filepath.Join(out, d.Name())
		b, err := os.ReadFile(filepath.Join(dir, specFile))
		if err != nil {
			continue // a folder of collect's own, not an experiment
		}
		var f File
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, specFile), err)
		}
		e := Entry{Name: f.Name, Dir: dir, Repeats: f.Repeats, Runs: f.runs(), State: "partial"}
		for _, sc := range f.Scenarios {
			e.Scenarios = append(e.Scenarios, sc.Name)
			for r := 1; r <= f.Repeats; r++ {
				if complete(filepath.Join(dir, sc.Name, strconv.Itoa(r))) {
					e.Complete++
				}
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "report.md")); err == nil && e.Complete == e.Runs {
			e.State = "complete"
		}
		es = append(es, e)
	}
	return es, nil
}
