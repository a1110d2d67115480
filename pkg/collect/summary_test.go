package collect

import (
	"strings"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

func TestProxiesAtEnd(t *testing.T) {
	fetches := map[string]float64{"proxy-0": 10, "proxy-1": 4, egress.None: 7, "proxy-2": 0}
	for _, tc := range []struct {
		name     string
		settings *timeline.Entry
		want     int
	}{
		{"recorded settings win", &timeline.Entry{Proxies: 3}, 3},
		{"no timeline: egress that fetched, not none", nil, 2},
	} {
		if got := proxiesAtEnd(tc.settings, fetches); got != tc.want {
			t.Errorf("%s: %d proxies, want %d", tc.name, got, tc.want)
		}
	}
	if got := proxiesAtEnd(nil, map[string]float64{egress.None: 5}); got != 1 {
		t.Errorf("only failed fetches: %d, want 1", got)
	}
}

func TestMarkdownSettingsAndNoEgress(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := Summary{
		Requests:    map[string]float64{"proxy-0": 100, egress.None: 3},
		RateLimited: map[string]float64{"proxy-0": 1},
		Timeline: []timeline.Entry{
			{At: t0, Provider: "local", Proxies: 2, ProxyAssignment: "pace", Partitions: 4, GraphWriters: 1, MaxWorkers: 4},
			{At: t0.Add(10 * time.Second), Provider: "local", Proxies: 3, ProxyAssignment: "pace", Partitions: 4, GraphWriters: 1, MaxWorkers: 4},
		},
	}
	md := s.Markdown(&runstate.Run{ID: "r1", CreatedAt: t0})
	for _, want := range []string{
		"- Settings: local, 2 proxies (pace), 4 partitions",
		"changed at " + t0.Add(10*time.Second).Format(time.TimeOnly) + ": proxies 2→3",
		"proxy-0 1 of 100 requests",
		"Fetches that reached no egress proxy (every proxy down, or no pacing slot in time): 3",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "none 0 of") || strings.Contains(md, " none ") {
		t.Errorf("the no-egress fetches are listed as an egress:\n%s", md)
	}
}
