package runstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAccountingUnderRedelivery replays what at-least-once delivery does —
// a parent redelivered re-enqueues its children, a job redelivered records
// its outcome again — and checks every enqueued job is counted once and
// ends as exactly one outcome.
func TestAccountingUnderRedelivery(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.Create(ctx, Run{ID: "r1", Name: "test", MaxDepth: 3, Seeds: []string{"OL1A"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() (int, error)
		want int
	}{
		{"enqueue seeds", func() (int, error) { return s.Enqueue(ctx, "r1", "a", "b", "c") }, 3},
		{"redelivered parent re-enqueues", func() (int, error) { return s.Enqueue(ctx, "r1", "b", "c", "d") }, 1},
		{"crawled a", outcome(s, "r1", "a", Crawled, ""), 1},
		{"crawled a again (redelivery)", outcome(s, "r1", "a", Crawled, ""), 0},
		{"b deduped", outcome(s, "r1", "b", Deduped, ""), 1},
		{"c to the DLQ", outcome(s, "r1", "c", DLQ, "not_found"), 1},
		{"c crawled after DLQ is ignored", outcome(s, "r1", "c", Crawled, ""), 0},
		{"unknown job", outcome(s, "r1", "zzz", Crawled, ""), 0},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil || got != st.want {
			t.Fatalf("%s: %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	r, err := s.Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{Enqueued: 4, Crawled: 1, Deduped: 1, DLQ: 1}
	if r.Counters != want || r.State != StateRunning {
		t.Fatalf("counters %+v state %s; want %+v running", r.Counters, r.State, want)
	}
	if done, _ := s.Done(ctx, "r1", "a"); !done {
		t.Error("a has an outcome but Done says no")
	}
	if done, _ := s.Done(ctx, "r1", "d"); done {
		t.Error("d is pending but Done says yes")
	}
	if _, err := outcome(s, "r1", "d", Crawled, "")(); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Get(ctx, "r1")
	if r.State != StateDrained || r.Counters.Finished() != r.Counters.Enqueued || r.DrainedAt.IsZero() {
		t.Errorf("after the last outcome: %+v", r)
	}
	if r.DLQByReason["not_found"] != 1 || r.Name != "test" || r.MaxDepth != 3 || len(r.Seeds) != 1 {
		t.Errorf("run fields: %+v", r)
	}
}

func outcome(s *Store, run, job, o, reason string) func() (int, error) {
	return func() (int, error) {
		ok, err := s.Outcome(context.Background(), run, job, o, reason)
		if ok {
			return 1, err
		}
		return 0, err
	}
}

func TestClaimsArePerRunAndReleasable(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	claim := func(run, url, job string) bool {
		ok, err := s.Claim(ctx, run, url, job)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	const u = "http://127.0.0.1/works/OL1W.json"
	if !claim("r1", u, "j1") {
		t.Fatal("first claim refused")
	}
	if !claim("r1", u, "j1") {
		t.Error("the holder's own retry was refused")
	}
	if claim("r1", u, "j2") {
		t.Error("a second job of the same run got the URL")
	}
	if !claim("r2", u, "j9") {
		t.Error("another run was blocked by r1's claim")
	}
	if err := s.Release(ctx, "r1", u, "j2"); err != nil {
		t.Fatal(err)
	}
	if claim("r1", u, "j3") {
		t.Error("a non-holder released the claim")
	}
	if err := s.Release(ctx, "r1", u, "j1"); err != nil {
		t.Fatal(err)
	}
	if !claim("r1", u, "j3") {
		t.Error("after the holder's release the URL is still blocked")
	}
	s.DedupeTTL = 50 * time.Millisecond
	claim("r3", u, "a")
	time.Sleep(120 * time.Millisecond)
	if !claim("r3", u, "b") {
		t.Error("claim outlived its TTL")
	}
}

func TestGetAndList(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v", err)
	}
	for i, id := range []string{"old", "new"} {
		if err := s.Create(ctx, Run{ID: id, CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.List(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != "new" {
		t.Fatalf("List: %v, %v", runs, err)
	}
	if err := s.SetWritten(ctx, "new", 5, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWritten(ctx, "new", 4, 9); err != nil { // a stale node count
		t.Fatal(err)
	}
	r, _ := s.Get(ctx, "new")
	if r.Counters.NodesWritten != 5 || r.Counters.EdgesWritten != 9 {
		t.Errorf("written: %+v, want the larger of each", r.Counters)
	}
}
