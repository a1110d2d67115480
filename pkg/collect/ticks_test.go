package collect

import (
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		max    float64
		labels string
	}{
		{97, "0 20 40 60 80 100"},
		{0.37, "0 0.1 0.2 0.3 0.4"},
		{1500, "0 500 1000 1500"},
		{0, "0 0.2 0.4 0.6 0.8 1"},
	} {
		ticks, top := NiceTicks(tc.max, 5)
		got := ""
		for i, tk := range ticks {
			if i > 0 {
				got += " "
			}
			got += tk.Label
		}
		if got != tc.labels || top < tc.max {
			t.Errorf("NiceTicks(%v) = %q up to %v, want %q", tc.max, got, top, tc.labels)
		}
	}
}

func TestTimeTicksAreRound(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 7, 0, time.UTC)
	ticks := TimeTicks(start, start.Add(95*time.Second), 8)
	if len(ticks) == 0 || len(ticks) > 8 {
		t.Fatalf("%d ticks", len(ticks))
	}
	for _, tk := range ticks {
		sec := int64(tk.Value/1e9) % 15
		if sec != 0 {
			t.Errorf("tick %s is not on a whole 15 s", tk.Label)
		}
	}
}
