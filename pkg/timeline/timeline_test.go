package timeline

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

func TestAppendReadDuring(t *testing.T) {
	dir := t.TempDir()
	if got, err := Read(dir); err != nil || got != nil {
		t.Fatalf("no timeline yet: %v, %v", got, err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for i, p := range []int{1, 2, 3, 5} {
		e := New("local", &budget.Plan{Proxies: p, Partitions: 32, MaxWorkers: 40, GraphWriters: 1}, "", nil)
		e.At = at(i * 10) // 0, 10, 20, 30
		if err := Append(dir, e); err != nil {
			t.Fatal(err)
		}
	}
	// A line cut short by a crash is skipped, not fatal.
	f, _ := os.OpenFile(filepath.Join(dir, File), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"at":"2026-12-01T10:00:4`)
	f.Close()
	entries, err := Read(dir)
	if err != nil || len(entries) != 4 {
		t.Fatalf("read %d entries, %v", len(entries), err)
	}
	if e := entries[0]; e.ProxyAssignment != "pace" || e.MaxWorkers != 32 || e.Provider != "local" {
		t.Errorf("entry %+v: want the default assignment and max workers capped at the partitions", e)
	}
	for _, tc := range []struct {
		name     string
		from, to int
		want     []int // proxies of the entries in force
	}{
		{"inside one setting", 12, 18, []int{2}},
		{"across two changes", 5, 25, []int{1, 2, 3}},
		{"starting on a change", 10, 15, []int{2}},
		{"after the last", 40, 50, []int{5}},
		{"before the first", -20, -10, nil},
		{"from before the first", -5, 12, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := During(entries, at(tc.from), at(tc.to))
			var proxies []int
			for _, e := range got {
				proxies = append(proxies, e.Proxies)
			}
			if len(proxies) != len(tc.want) {
				t.Fatalf("proxies %v, want %v", proxies, tc.want)
			}
			for i := range proxies {
				if proxies[i] != tc.want[i] {
					t.Fatalf("proxies %v, want %v", proxies, tc.want)
				}
			}
		})
	}
}
