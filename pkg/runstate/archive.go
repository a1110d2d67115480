package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SaveRun writes a run's description to dir/<id>.json, so that it
// outlives an in-memory store (the local stack's): its counters then come
// from the metrics.
func SaveRun(dir string, run *Run) error {
	if !strings.HasPrefix(run.ID, "r") || strings.ContainsAny(run.ID, `/\.`) {
		return fmt.Errorf("run id %q: not one of this store's", run.ID)
	}
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+run.ID+".json")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, run.ID+".json"))
}

// LoadRun reads a run SaveRun wrote to dir: id's, or the newest when id is
// empty.
func LoadRun(dir, id string) (*Run, error) {
	if id == "" {
		files, _ := filepath.Glob(filepath.Join(dir, "r*.json"))
		var newest *Run
		for _, f := range files {
			r, err := readRunFile(f)
			if err != nil {
				return nil, err
			}
			if newest == nil || r.CreatedAt.After(newest.CreatedAt) {
				newest = r
			}
		}
		if newest == nil {
			return nil, fmt.Errorf("no run was recorded in %s: there is nothing to collect", dir)
		}
		return newest, nil
	}
	if strings.ContainsAny(id, `/\`) {
		return nil, fmt.Errorf("run id %q: not a run id", id)
	}
	r, err := readRunFile(filepath.Join(dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("run %q was not recorded in %s", id, dir)
	}
	return r, err
}

func readRunFile(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", path, err)
	}
	return &r, nil
}
