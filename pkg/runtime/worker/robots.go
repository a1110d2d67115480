package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/temoto/robotstxt"
	"golang.org/x/time/rate"

	"github.com/crawlctl/crawlctl/pkg/openlibrary"
)

// robotsCache fetches the target's robots.txt once and answers whether a
// URL may be fetched, pacing fetches by its Crawl-delay.
type robotsCache struct {
	target  openlibrary.Target
	fetcher Fetcher
	agent   string

	mu      sync.Mutex
	group   *robotstxt.Group
	limiter *rate.Limiter
}

func newRobotsCache(t openlibrary.Target, f Fetcher, agent string) *robotsCache {
	return &robotsCache{target: t, fetcher: f, agent: agent}
}

// load fetches robots.txt; an error is retried by the job's caller.
func (r *robotsCache) load(ctx context.Context) (*robotstxt.Group, *rate.Limiter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.group != nil {
		return r.group, r.limiter, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.target.URL("/robots.txt"), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("User-Agent", r.agent)
	resp, _, err := r.fetcher.Fetch(req, 30*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching robots.txt: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return nil, nil, fmt.Errorf("fetching robots.txt: HTTP %d", resp.StatusCode)
	}
	data, err := robotstxt.FromResponse(resp) // 4xx: allow all, as the spec says
	if err != nil {
		return nil, nil, fmt.Errorf("parsing robots.txt: %w", err)
	}
	r.group = data.FindGroup(r.agent)
	if d := r.group.CrawlDelay; d > 0 {
		r.limiter = rate.NewLimiter(rate.Every(d), 1)
	}
	return r.group, r.limiter, nil
}

// allow reports whether u may be fetched and waits out the Crawl-delay.
func (r *robotsCache) allow(ctx context.Context, u string) (bool, error) {
	g, lim, err := r.load(ctx)
	if err != nil {
		return false, err
	}
	pu, err := url.Parse(u)
	if err != nil {
		return false, nil
	}
	if !g.Test(pu.EscapedPath()) {
		return false, nil
	}
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return false, err
		}
	}
	return true, nil
}
