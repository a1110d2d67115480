package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/crawl"
	egresspool "github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// fetchResult classifies one fetch.
type fetchResult struct {
	page       *openlibrary.Page
	status     int
	retryAfter time.Duration
	reason     string // failure reason, empty on success
	retryable  bool
	requeue    bool // not sent (no pacing slot in time): later, no attempt spent
}

// handle runs one job. An error means Kafka or Redis failed and the whole
// job is tried again; every crawl outcome (success, duplicate, retry, DLQ)
// returns nil.
func (w *Worker) handle(ctx context.Context, job crawl.Job) error {
	s := w.opts.Store
	if done, err := s.Done(ctx, job.Run, job.ID); err != nil {
		return err
	} else if done {
		w.m.jobs.WithLabelValues("redelivered").Inc()
		return nil
	}
	u, err := w.opts.Target.Canonical(job.URL)
	if err != nil {
		// Never fetched: the crawl does not leave its target.
		return w.fail(ctx, job, fetchResult{reason: crawl.ReasonOutsideScope})
	}
	job.URL = u
	if ok, err := s.Claim(ctx, job.Run, u, job.ID); err != nil {
		return err
	} else if !ok {
		if _, err := s.Outcome(ctx, job.Run, job.ID, runstate.Deduped, ""); err != nil {
			return err
		}
		w.m.jobs.WithLabelValues(runstate.Deduped).Inc()
		return nil
	}
	if w.robots != nil {
		allowed, err := w.robots.allow(ctx, u)
		if err != nil {
			return err
		}
		if !allowed {
			return w.fail(ctx, job, fetchResult{reason: crawl.ReasonRobots})
		}
	}
	res := w.fetch(ctx, u)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case res.reason == "":
		return w.emit(ctx, job, res.page)
	case res.requeue:
		return w.reschedule(ctx, job, job.Attempt, w.opts.BackoffBase)
	case res.retryable && job.Attempt+1 < w.opts.MaxAttempts:
		return w.retry(ctx, job, res)
	default:
		return w.fail(ctx, job, res)
	}
}

// fetch gets and parses u.
func (w *Worker) fetch(ctx context.Context, u string) fetchResult {
	// Waiting for a pacing slot is not part of the fetch: its own bound is
	// MaxPacingWait, and FetchTimeout starts once an egress takes the request.
	fctx, cancel := context.WithTimeout(ctx, w.opts.MaxPacingWait+w.opts.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u, nil)
	if err != nil {
		return fetchResult{reason: crawl.ReasonClientError}
	}
	req.Header.Set("User-Agent", w.opts.UserAgent)
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, egress, err := w.opts.Fetcher.Fetch(req, w.opts.FetchTimeout)
	if egress == "" {
		egress = egresspool.None
	}
	if errors.Is(err, egresspool.ErrWaitTooLong) {
		// Not sent: hand the job back for later, no attempt spent.
		w.m.fetches.WithLabelValues(egress, "wait_too_long").Inc()
		return fetchResult{reason: crawl.ReasonTimeout, requeue: true}
	}
	if err != nil {
		w.m.fetches.WithLabelValues(egress, "error").Inc()
		w.m.fetchDuration.WithLabelValues(egress).Observe(time.Since(start).Seconds())
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return fetchResult{reason: crawl.ReasonTimeout, retryable: true}
		}
		return fetchResult{reason: crawl.ReasonNetwork, retryable: true}
	}
	defer resp.Body.Close()
	res := w.classify(resp)
	if res.reason == "" {
		res = w.parse(req.URL, resp.Body)
	} else {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	}
	w.m.fetches.WithLabelValues(egress, strconv.Itoa(resp.StatusCode)).Inc()
	w.m.fetchDuration.WithLabelValues(egress).Observe(time.Since(start).Seconds())
	if resp.StatusCode == http.StatusTooManyRequests {
		w.m.rateLimited.WithLabelValues(egress).Inc()
	}
	return res
}

// classify maps a status to an outcome: 429, 5xx retry; 404, 403 and other
// 4xx go to the DLQ at once.
func (w *Worker) classify(resp *http.Response) fetchResult {
	r := fetchResult{status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusTooManyRequests:
		r.reason, r.retryable = crawl.ReasonRateLimited, true
		r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code >= 500:
		r.reason, r.retryable = crawl.ReasonServerError, true
		r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code == http.StatusNotFound || code == http.StatusGone:
		r.reason = crawl.ReasonNotFound
	case code == http.StatusForbidden || code == http.StatusUnauthorized:
		r.reason = crawl.ReasonForbidden
	default:
		r.reason = crawl.ReasonClientError
	}
	return r
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// bodyReader caps a body and remembers a read error, so a cut connection
// (retry) is told apart from a body that is not JSON (DLQ).
type bodyReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	err      error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.exceeded = true
		return 0, errors.New("body over the size cap")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// parse decodes the body as it streams in.
func (w *Worker) parse(u *url.URL, body io.Reader) fetchResult {
	br := &bodyReader{r: body, left: w.opts.MaxBodyBytes}
	page, err := openlibrary.Parse(u, br)
	switch {
	case br.exceeded:
		return fetchResult{status: 200, reason: crawl.ReasonTooLarge}
	case br.err != nil && isTimeout(br.err):
		return fetchResult{status: 200, reason: crawl.ReasonTimeout, retryable: true}
	case br.err != nil:
		return fetchResult{status: 200, reason: crawl.ReasonNetwork, retryable: true}
	case err != nil:
		return fetchResult{status: 200, reason: crawl.ReasonParse}
	}
	return fetchResult{status: 200, page: page}
}

func record(topic string, key []byte, v any) (*kgo.Record, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Key: key, Value: b}, nil
}

// produce writes records and waits for their acknowledgement. All records
// of a job go in one call, and concurrent jobs' records share batches.
func (w *Worker) produce(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := w.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		w.m.produceErrors.Inc()
		return fmt.Errorf("producing %d records: %w", len(recs), err)
	}
	for _, r := range recs {
		w.m.produced.WithLabelValues(r.Topic).Inc()
	}
	return nil
}

// emit produces a fetched page's nodes, edges and child jobs, then records
// the job as crawled.
func (w *Worker) emit(ctx context.Context, job crawl.Job, page *openlibrary.Page) error {
	var recs []*kgo.Record
	add := func(topic string, key []byte, v any) error {
		r, err := record(topic, key, v)
		if err == nil {
			recs = append(recs, r)
		}
		return err
	}
	for _, n := range append([]crawl.Node{page.Node}, page.Nodes...) {
		if err := add(topics.Results, []byte(n.Key), crawl.Result{V: crawl.MessageVersion, Run: job.Run, URL: job.URL, Kind: n.Kind, Node: n}); err != nil {
			return err
		}
	}
	for _, e := range page.Edges {
		if err := add(topics.Edges, []byte(e.From), crawl.Edge{V: crawl.MessageVersion, Run: job.Run, From: e.From, To: e.To, Relation: e.Relation}); err != nil {
			return err
		}
	}
	if job.Depth < job.MaxDepth {
		now := time.Now().UTC()
		seen := map[string]bool{}
		var ids []string
		var children []*kgo.Record
		for _, link := range page.Links {
			cu, err := w.opts.Target.Canonical(w.opts.Target.URL(link))
			if err != nil || seen[cu] {
				continue
			}
			seen[cu] = true
			child := crawl.Job{V: crawl.MessageVersion, ID: crawl.JobID(job.Run, job.URL, cu), Run: job.Run, Seed: job.Seed,
				URL: cu, Depth: job.Depth + 1, MaxDepth: job.MaxDepth, CreatedAt: now}
			r, err := record(topics.Frontier, child.Key(), child)
			if err != nil {
				return err
			}
			ids = append(ids, child.ID)
			children = append(children, r)
		}
		// Counted before produced: a crash in between leaves them counted,
		// and the redelivered parent produces them again.
		if _, err := w.opts.Store.Enqueue(ctx, job.Run, ids...); err != nil {
			return err
		}
		recs = append(recs, children...)
	}
	if err := w.produce(ctx, recs); err != nil {
		return err
	}
	if _, err := w.opts.Store.Outcome(ctx, job.Run, job.ID, runstate.Crawled, ""); err != nil {
		return err
	}
	w.m.jobs.WithLabelValues(runstate.Crawled).Inc()
	return nil
}

// retry schedules the job's next attempt on the retry topic.
func (w *Worker) retry(ctx context.Context, job crawl.Job, res fetchResult) error {
	return w.reschedule(ctx, job, job.Attempt+1, w.backoff(job.Attempt+1, res.retryAfter))
}

// reschedule puts the job on the retry topic as attempt, not before delay
// from now.
func (w *Worker) reschedule(ctx context.Context, job crawl.Job, attempt int, delay time.Duration) error {
	next := job
	next.Attempt = attempt
	next.NotBefore = time.Now().Add(delay).UTC()
	r, err := record(topics.Retry, next.Key(), next)
	if err != nil {
		return err
	}
	if err := w.produce(ctx, []*kgo.Record{r}); err != nil {
		return err
	}
	if err := w.opts.Store.AddRetried(ctx, job.Run); err != nil {
		return err
	}
	w.m.jobs.WithLabelValues("retried").Inc()
	return nil
}

// fail sends the job to the DLQ with its reason and releases its URL.
func (w *Worker) fail(ctx context.Context, job crawl.Job, res fetchResult) error {
	f := crawl.Failure{V: crawl.MessageVersion, Run: job.Run, JobID: job.ID, Seed: job.Seed, URL: job.URL, Depth: job.Depth,
		Attempt: job.Attempt, Reason: res.reason, Status: res.status, FailedAt: time.Now().UTC()}
	r, err := record(topics.DLQ, job.Key(), f)
	if err != nil {
		return err
	}
	if err := w.produce(ctx, []*kgo.Record{r}); err != nil {
		return err
	}
	if _, err := w.opts.Store.Outcome(ctx, job.Run, job.ID, runstate.DLQ, res.reason); err != nil {
		return err
	}
	if err := w.opts.Store.Release(ctx, job.Run, job.URL, job.ID); err != nil {
		return err
	}
	w.m.jobs.WithLabelValues(runstate.DLQ).Inc()
	return nil
}
