package worker

import (
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/crawl"
)

func TestTrackerCommitsOnlyTheFinishedPrefix(t *testing.T) {
	tr := newTracker()
	rec := func(off int64) *kgo.Record { return &kgo.Record{Topic: "f", Partition: 3, Offset: off, LeaderEpoch: 1} }
	var p *partition
	for off := int64(10); off < 15; off++ {
		p = tr.add(rec(off))
	}
	steps := []struct {
		finish []int64
		point  int64 // commit point: the lowest unfinished offset
		moved  bool  // whether there is a new commit
	}{
		{nil, 10, true},                  // nothing finished: 10 is the first unfinished
		{[]int64{11, 12, 14}, 10, false}, // out of order: 10 still holds the line
		{[]int64{10}, 13, true},          // 10 done: 13 is next unfinished
		{[]int64{13}, 15, true},          // all done: everything fetched
	}
	for i, st := range steps {
		for _, o := range st.finish {
			tr.done(p, o)
		}
		if got := p.commitPoint(); got != st.point {
			t.Fatalf("step %d: commit point %d, want %d", i, got, st.point)
		}
		got := tr.uncommitted(nil)
		if eo, ok := got["f"][3]; ok != st.moved || (ok && (eo.Offset != st.point || eo.Epoch != 1)) {
			t.Fatalf("step %d: to commit %v, want %d (moved %v)", i, got, st.point, st.moved)
		}
		tr.committed(got)
	}
	if got := tr.uncommitted(nil); len(got) != 0 {
		t.Errorf("nothing moved, yet %v to commit", got)
	}
	// A revoked partition is forgotten: late finishes of its jobs are
	// not its owner's any more.
	tr.drop(map[string][]int32{"f": {3}})
	if tr.owns(rec(15), p) {
		t.Error("dropped partition still owned")
	}
	p2 := tr.add(rec(20))
	if p2 == p || tr.pendingCount() != 1 {
		t.Errorf("re-assigned partition reuses old state")
	}
}

func TestBackoff(t *testing.T) {
	w := &Worker{opts: Options{BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second}}
	for attempt := 1; attempt <= 8; attempt++ {
		ceiling := min(200*time.Millisecond<<(attempt-1), 2*time.Second)
		for range 50 {
			if d := w.backoff(attempt, 0); d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
	if d := w.backoff(1, 7*time.Second); d != 7*time.Second {
		t.Errorf("Retry-After 7s gave %v", d)
	}
	if d := w.backoff(1, time.Hour); d != 10*time.Minute {
		t.Errorf("Retry-After is capped at 10m, got %v", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 24 Nov 2026 10:00:30 GMT": 30 * time.Second,
		"Tue, 24 Nov 2026 09:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	w := &Worker{}
	for code, want := range map[int]struct {
		reason    string
		retryable bool
	}{
		200: {"", false},
		429: {crawl.ReasonRateLimited, true},
		500: {crawl.ReasonServerError, true},
		503: {crawl.ReasonServerError, true},
		404: {crawl.ReasonNotFound, false},
		410: {crawl.ReasonNotFound, false},
		403: {crawl.ReasonForbidden, false},
		400: {crawl.ReasonClientError, false},
	} {
		r := w.classify(&http.Response{StatusCode: code, Header: http.Header{}})
		if r.reason != want.reason || r.retryable != want.retryable {
			t.Errorf("%d: %q retryable=%v, want %q %v", code, r.reason, r.retryable, want.reason, want.retryable)
		}
	}
}
