package collect

import (
	"fmt"
	"sort"
	"strings"
	"time"

	egresspool "github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

// StuckWindow is a partition whose lag stayed flat and non-zero.
type StuckWindow struct {
	Partition string    `json:"partition"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Lag       float64   `json:"lag"`
}

// ReplicaChange is one step of the worker replica timeline.
type ReplicaChange struct {
	At   time.Time `json:"at"`
	From float64   `json:"from"`
	To   float64   `json:"to"`
}

// Summary is what a person would read off the graphs, computed.
type Summary struct {
	DrainSeconds    float64            `json:"drain_seconds"` // 0 while running
	StuckAfter      time.Duration      `json:"stuck_after_ns"`
	PeakLag         float64            `json:"peak_lag"`
	PeakLagAt       time.Time          `json:"peak_lag_at"`
	Stuck           []StuckWindow      `json:"stuck_partitions"`
	RateLimited     map[string]float64 `json:"rate_limited_by_egress"`
	Requests        map[string]float64 `json:"requests_by_egress"`
	Replicas        []ReplicaChange    `json:"worker_replicas"`
	PeakWorkers     float64            `json:"peak_workers"`
	PeakEdgesPerSec float64            `json:"peak_edges_per_second"`
	MeanEdgesPerSec float64            `json:"mean_edges_per_second"`
	DLQByReason     map[string]int64   `json:"dlq_by_reason"`
	// Timeline is the settings in force during the run (run.json has it at
	// its top level).
	Timeline []timeline.Entry `json:"-"`
}

func panel(ps []*PanelData, file string) *PanelData {
	for _, p := range ps {
		if p.File == file {
			return p
		}
	}
	return &PanelData{}
}

// Total is the sum of a panel's series at each time it has a value.
func (d *PanelData) Total() map[int64]float64 {
	out := map[int64]float64{}
	for _, s := range d.Series {
		for t, v := range s.Values {
			out[t] += v
		}
	}
	return out
}

func summarize(run *runstate.Run, ps []*PanelData, limited, requests map[string]float64, stuckAfter time.Duration) Summary {
	s := Summary{RateLimited: limited, Requests: requests, DLQByReason: run.DLQByReason, StuckAfter: stuckAfter}
	if !run.DrainedAt.IsZero() {
		s.DrainSeconds = run.DrainedAt.Sub(run.CreatedAt).Seconds()
	}
	lag := panel(ps, "frontier_lag")
	for t, v := range lag.Total() {
		if v > s.PeakLag || (v == s.PeakLag && time.Unix(t, 0).Before(s.PeakLagAt)) {
			s.PeakLag, s.PeakLagAt = v, time.Unix(t, 0).UTC()
		}
	}
	for _, ser := range lag.Series {
		s.Stuck = append(s.Stuck, stuck(ser, stuckAfter)...)
	}
	for _, ser := range panel(ps, "replicas").Series {
		if ser.Name != "worker" {
			continue
		}
		prev := -1.0
		for _, t := range sortedTimes(ser) {
			v := ser.Values[t]
			if v != prev {
				if prev >= 0 {
					s.Replicas = append(s.Replicas, ReplicaChange{At: time.Unix(t, 0).UTC(), From: prev, To: v})
				}
				prev = v
			}
			s.PeakWorkers = max(s.PeakWorkers, v)
		}
	}
	edges := panel(ps, "edges").Total()
	var sum float64
	for _, v := range edges {
		s.PeakEdgesPerSec = max(s.PeakEdgesPerSec, v)
		sum += v
	}
	if len(edges) > 0 {
		s.MeanEdgesPerSec = sum / float64(len(edges))
	}
	return s
}

// stuck finds windows of at least after where a series stayed at one
// non-zero value.
func stuck(ser Series, after time.Duration) []StuckWindow {
	var out []StuckWindow
	ts := sortedTimes(ser)
	for i := 0; i < len(ts); {
		j := i
		for j+1 < len(ts) && ser.Values[ts[j+1]] == ser.Values[ts[i]] {
			j++
		}
		if v := ser.Values[ts[i]]; v > 0 && time.Duration(ts[j]-ts[i])*time.Second >= after {
			out = append(out, StuckWindow{Partition: ser.Name, From: time.Unix(ts[i], 0).UTC(), To: time.Unix(ts[j], 0).UTC(), Lag: v})
		}
		i = j + 1
	}
	return out
}

// writeSettings says which settings the run ran with and when they changed.
func (s Summary) writeSettings(b *strings.Builder) {
	if len(s.Timeline) == 0 {
		return
	}
	e := s.Timeline[0]
	fmt.Fprintf(b, "- Settings: %s, %d proxies (%s), %d partitions, %d graph writer(s), up to %d workers\n",
		e.Provider, e.Proxies, e.ProxyAssignment, e.Partitions, e.GraphWriters, e.MaxWorkers)
	for i, n := range s.Timeline[1:] {
		p := s.Timeline[i]
		var changed []string
		for _, c := range []struct {
			what     string
			from, to any
		}{{"proxies", p.Proxies, n.Proxies}, {"proxy assignment", p.ProxyAssignment, n.ProxyAssignment},
			{"partitions", p.Partitions, n.Partitions}, {"graph writers", p.GraphWriters, n.GraphWriters},
			{"max workers", p.MaxWorkers, n.MaxWorkers}} {
			if c.from != c.to {
				changed = append(changed, fmt.Sprintf("%s %v→%v", c.what, c.from, c.to))
			}
		}
		if len(changed) == 0 {
			changed = []string{"settings reapplied"}
		}
		fmt.Fprintf(b, "  - changed at %s: %s\n", n.At.Format(time.TimeOnly), strings.Join(changed, ", "))
	}
}

// Markdown is the summary as summary.md.
func (s Summary) Markdown(run *runstate.Run) string {
	var b strings.Builder
	c := run.Counters
	fmt.Fprintf(&b, "# Run %s (%s)\n\n", run.ID, run.Name)
	fmt.Fprintf(&b, "- Seeds: %d, max depth %d, target %s\n", len(run.Seeds), run.MaxDepth, run.Target)
	if s.DrainSeconds > 0 {
		fmt.Fprintf(&b, "- **Time to drain: %s** (created %s, drained %s)\n", time.Duration(s.DrainSeconds*float64(time.Second)).Round(time.Second),
			run.CreatedAt.Format(time.TimeOnly), run.DrainedAt.Format(time.TimeOnly))
	} else {
		fmt.Fprintf(&b, "- Not drained when collected (%s)\n", run.State)
	}
	fmt.Fprintf(&b, "- URLs: %d enqueued = %d crawled + %d deduped + %d DLQ; %d retries scheduled; %d edges and %d nodes stored\n",
		c.Enqueued, c.Crawled, c.Deduped, c.DLQ, c.Retried, c.EdgesWritten, c.NodesWritten)
	fmt.Fprintf(&b, "- Peak frontier lag: %.0f at %s\n", s.PeakLag, s.PeakLagAt.Format(time.TimeOnly))
	if len(s.Stuck) == 0 {
		fmt.Fprintf(&b, "- Stuck partitions (lag flat and non-zero for %v or more): none\n", s.StuckAfter)
	} else {
		fmt.Fprintf(&b, "- Stuck partitions (lag flat and non-zero for %v or more):\n", s.StuckAfter)
		for _, w := range s.Stuck {
			fmt.Fprintf(&b, "  - partition %s at %.0f from %s to %s (%s)\n", w.Partition, w.Lag, w.From.Format(time.TimeOnly),
				w.To.Format(time.TimeOnly), w.To.Sub(w.From))
		}
	}
	s.writeSettings(&b)
	egress := make([]string, 0, len(s.Requests))
	for e := range s.Requests {
		if e != egresspool.None {
			egress = append(egress, e)
		}
	}
	sort.Strings(egress)
	fmt.Fprintf(&b, "- 429s per egress:")
	for _, e := range egress {
		pct := 0.0
		if s.Requests[e] > 0 {
			pct = 100 * s.RateLimited[e] / s.Requests[e]
		}
		fmt.Fprintf(&b, " %s %.0f of %.0f requests (%.1f%%);", e, s.RateLimited[e], s.Requests[e], pct)
	}
	b.WriteString("\n")
	if n := s.Requests[egresspool.None]; n > 0 {
		fmt.Fprintf(&b, "- Fetches that reached no egress proxy (every proxy down, or no pacing slot in time): %.0f\n", n)
	}
	fmt.Fprintf(&b, "- Worker replicas: peak %.0f;", s.PeakWorkers)
	for _, r := range s.Replicas {
		fmt.Fprintf(&b, " %s %.0f→%.0f;", r.At.Format(time.TimeOnly), r.From, r.To)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- Graph writer: peak %.1f edges/s, mean %.1f edges/s\n", s.PeakEdgesPerSec, s.MeanEdgesPerSec)
	if len(s.DLQByReason) == 0 {
		b.WriteString("- DLQ by reason: none\n")
	} else {
		b.WriteString("- DLQ by reason:")
		for r, n := range s.DLQByReason {
			fmt.Fprintf(&b, " %s %d;", r, n)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nPictures: screenshots/overview.png; data: csv_data/*.csv (time column, one column per series).\n")
	return b.String()
}
