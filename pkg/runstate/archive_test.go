package runstate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveAndLoadRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs")
	if _, err := LoadRun(dir, ""); err == nil || !strings.Contains(err.Error(), "no run was recorded") {
		t.Errorf("newest of none: %v", err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	older := &Run{ID: "r20261201-100000-aaaaaa", Name: "a", Seeds: []string{"x"}, CreatedAt: t0}
	newer := &Run{ID: "r20261201-100500-bbbbbb", Name: "b", Seeds: []string{"y", "z"}, CreatedAt: t0.Add(5 * time.Minute)}
	for _, r := range []*Run{newer, older} {
		if err := SaveRun(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := LoadRun(dir, ""); err != nil || r.ID != newer.ID || len(r.Seeds) != 2 {
		t.Errorf("newest: %+v, %v", r, err)
	}
	if r, err := LoadRun(dir, older.ID); err != nil || r.Name != "a" {
		t.Errorf("by id: %+v, %v", r, err)
	}
	for _, id := range []string{"r20200101-000000-000000", "../../etc/passwd"} {
		if _, err := LoadRun(dir, id); err == nil {
			t.Errorf("LoadRun(%q) found a run", id)
		}
	}
	if err := SaveRun(dir, &Run{ID: "../x"}); err == nil {
		t.Error("SaveRun wrote a run whose id is a path")
	}
	os.WriteFile(filepath.Join(dir, "r20261201-110000-cccccc.json"), []byte("{"), 0o644)
	if _, err := LoadRun(dir, ""); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("a damaged file: %v", err)
	}
}
