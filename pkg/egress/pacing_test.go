package egress

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// TestA429ClusterLowersTheRateOnce: 429s within decreaseHoldoff of each
// other are one event (the rate drops by a fifth, not to 1/2^n); a later
// one lowers it again; the floor is base/20. Same for the pacing shared in
// Redis.
func TestA429ClusterLowersTheRateOnce(t *testing.T) {
	pc := newPacer(Options{Rate: 100, Burst: 1, QuietPeriod: 2 * time.Second}, "e")
	t0 := time.Now()
	for i := range 5 {
		pc.throttled(t0.Add(time.Duration(i) * 10 * time.Millisecond))
	}
	if got := pc.limit(); got != 80 {
		t.Errorf("after a cluster of five 429s: %v/s, want 80", got)
	}
	pc.throttled(t0.Add(decreaseHoldoff + 100*time.Millisecond))
	if got := pc.limit(); got < 63.9 || got > 64.1 {
		t.Errorf("after a second cluster: %v/s, want 64", got)
	}
	for i := range 100 {
		pc.throttled(t0.Add(time.Duration(i+2) * 2 * decreaseHoldoff))
	}
	if got := pc.limit(); got != 5 {
		t.Errorf("after many clusters: %v/s, want the floor 5", got)
	}

	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis(t)})
	t.Cleanup(func() { rdb.Close() })
	sp := &sharedPacing{rdb: rdb, base: 10 * time.Millisecond, quietPeriod: 2 * time.Second}
	ctx := context.Background()
	key := paceKey("cluster.test", "e")
	for range 5 {
		if err := sp.throttled(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	iv, err := rdb.HGet(ctx, key, "iv").Float64()
	if err != nil || iv < 12.4 || iv > 12.6 {
		t.Errorf("shared: after a cluster of five 429s the interval is %v ms (%v), want 12.5 (rate ×0.8)", iv, err)
	}
}

// TestPacingWaitIsNotTheFetchTimeout: a request that waits for its pacing
// slot longer than the fetch timeout still succeeds (the timeout starts at
// the slot); one whose slot lies past its context's deadline is refused at
// once, unsent.
func TestPacingWaitIsNotTheFetchTimeout(t *testing.T) {
	s := newSite(t)
	proxies, _ := startProxies(t, s, 1)
	p := newPool(t, Options{Proxies: proxies, Rate: 4, Burst: 1})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 4 { // slots at 0, 0.25, 0.5 and 0.75 s
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/x", nil)
			resp, _, err := p.Fetch(req, 200*time.Millisecond)
			if err == nil {
				resp.Body.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d failed although only its pacing wait was long: %v", i, err)
		}
	}
	// The queue is now booked ahead; a request that may wait 100ms is
	// refused without being sent.
	p.pacerFor(p.members[0], hostOf(s.URL)).lim.ReserveN(time.Now(), 4) // the next second of slots is taken
	before := s.counts()["127.0.0.2"]
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/x", nil)
	// ErrWaitTooLong, not the deadline's error: refused before waiting.
	if _, _, err := p.Fetch(req, time.Second); !errors.Is(err, ErrWaitTooLong) {
		t.Errorf("a request whose slot is past its deadline: %v, want ErrWaitTooLong", err)
	}
	if after := s.counts()["127.0.0.2"]; after != before {
		t.Errorf("the refused request was sent (%d → %d)", before, after)
	}
}
