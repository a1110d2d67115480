package worker

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/crawlctl/crawlctl/pkg/egress"
)

// Fetcher sends a crawl request through some egress and says which one.
// Waiting for an egress (pacing) is bounded by req's context; timeout
// bounds the exchange itself, body included, from the moment an egress
// takes it. The egress pool implements it; Direct fetches without a proxy.
type Fetcher interface {
	Fetch(req *http.Request, timeout time.Duration) (resp *http.Response, egress string, err error)
}

// Direct fetches straight from this host.
type Direct struct{ Client *http.Client }

// NewDirect is a Direct fetcher with pooled keep-alive connections.
func NewDirect() *Direct {
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64, // Go's default of 2 throttles a crawler
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Direct{Client: &http.Client{Transport: t, CheckRedirect: sameHostRedirects}}
}

// Fetch implements Fetcher.
func (d *Direct) Fetch(req *http.Request, timeout time.Duration) (*http.Response, string, error) {
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	resp, err := d.Client.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, "direct", err
	}
	resp.Body = egress.TimedBody(resp.Body, cancel)
	return resp, "direct", nil
}

// sameHostRedirects follows at most 5 redirects and never to another host:
// the crawl stays on its target.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return http.ErrUseLastResponse
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return http.ErrUseLastResponse
	}
	return nil
}
