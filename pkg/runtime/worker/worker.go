// Package worker is the crawl worker (`crawlctl run worker`): it consumes
// the frontier and retry topics in a consumer group, fetches each URL from
// the crawl target through a Fetcher (the egress pool, or directly), parses
// it, and produces results, edges, child jobs, retries and DLQ failures.
//
// What it does differently from the reference crawler: up to
// ConcurrentJobs jobs run out of order and offsets are committed only up to
// the lowest unfinished one, so a slow or rate-limited URL never holds up
// its partition; retries are handed to the retry topic and scheduled, never
// slept on; records are produced in batches; dedupe is per run; revoked
// partitions drop their state so a rebalance never stalls.
package worker

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/crawlctl/crawlctl/pkg/crawl"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Options configure a worker.
type Options struct {
	Brokers        []string
	Target         openlibrary.Target
	Store          *runstate.Store
	Fetcher        Fetcher // nil: Direct
	ConcurrentJobs int     // jobs in flight (default 5)
	MaxAttempts    int     // fetch attempts before the DLQ (default 4)
	BackoffBase    time.Duration
	BackoffMax     time.Duration
	MaxBodyBytes   int64
	FetchTimeout   time.Duration
	// MaxPacingWait bounds how long a job waits for its egress pacing slot
	// (not part of FetchTimeout); a job whose slot lies further out is
	// handed back for later without spending an attempt.
	MaxPacingWait time.Duration
	UserAgent     string
	Robots        bool // obey the target's robots.txt, including Crawl-delay
	// SessionTimeout is the consumer group session: how long a dead
	// worker keeps its partitions.
	SessionTimeout time.Duration
	// DrainTimeout bounds how long a stopping worker waits for its jobs.
	DrainTimeout time.Duration
	ClientID     string
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// DefaultUserAgent identifies the crawler with a contact, as Open Library
// asks of every client.
const DefaultUserAgent = "crawlctl/1 (+https://github.com/crawlctl/crawlctl; crawl experiments)"

// DefaultOptions are a worker's defaults, which its flags show; New fills every zero
// field from them.
func DefaultOptions() Options {
	return Options{
		ConcurrentJobs: 5,
		MaxAttempts:    4,
		BackoffBase:    200 * time.Millisecond,
		BackoffMax:     30 * time.Second,
		MaxBodyBytes:   4 << 20,
		FetchTimeout:   30 * time.Second,
		MaxPacingWait:  5 * time.Minute,
		UserAgent:      DefaultUserAgent,
		SessionTimeout: 10 * time.Second,
		DrainTimeout:   30 * time.Second,
	}
}

func (o *Options) defaults() {
	d := DefaultOptions()
	if o.Fetcher == nil {
		o.Fetcher = NewDirect()
	}
	if o.ConcurrentJobs <= 0 {
		o.ConcurrentJobs = d.ConcurrentJobs
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = d.BackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = d.BackoffMax
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = d.FetchTimeout
	}
	if o.MaxPacingWait <= 0 {
		o.MaxPacingWait = d.MaxPacingWait
	}
	if o.UserAgent == "" {
		o.UserAgent = d.UserAgent
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = d.SessionTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = d.DrainTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// maxDelayed is how many retries may wait in memory before the worker stops
// fetching from the retry topic.
const maxDelayed = 5000

// Worker is one crawl worker process's consumer.
type Worker struct {
	opts    Options
	cl      *kgo.Client
	tracker *tracker
	m       *metrics
	robots  *robotsCache

	ready    chan *item
	inReady  atomic.Int64 // items in ready or in process
	wake     chan struct{}
	delayMu  sync.Mutex
	delayed  delayHeap
	delayNew chan struct{}
	retryOff atomic.Bool // retry topic paused
	stopping atomic.Bool // draining: queued jobs are left for redelivery
}

type item struct {
	rec  *kgo.Record
	part *partition
	job  crawl.Job
}

// New validates options and builds a worker; Run starts it.
func New(opts Options) (*Worker, error) {
	opts.defaults()
	if len(opts.Brokers) == 0 {
		return nil, errors.New("worker: no Kafka brokers configured")
	}
	if opts.Store == nil {
		return nil, errors.New("worker: no run store (Redis) configured")
	}
	if opts.Target.Host() == "" {
		return nil, errors.New("worker: no crawl target configured")
	}
	w := &Worker{
		opts:     opts,
		tracker:  newTracker(),
		ready:    make(chan *item, 4*opts.ConcurrentJobs+maxDelayed),
		wake:     make(chan struct{}, 1),
		delayNew: make(chan struct{}, 1),
	}
	w.m = newMetrics(opts.Registerer,
		func() float64 { return float64(w.tracker.pendingCount()) },
		func() float64 { w.delayMu.Lock(); defer w.delayMu.Unlock(); return float64(len(w.delayed)) })
	if opts.Robots {
		w.robots = newRobotsCache(opts.Target, opts.Fetcher, opts.UserAgent)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID(opts.ClientID),
		kgo.ConsumerGroup(topics.WorkerGroup),
		kgo.ConsumeTopics(topics.Frontier, topics.Retry),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.FetchMaxWait(250*time.Millisecond),
		// A worker handles a few jobs at a time; kgo's defaults (50 MiB a
		// fetch, 1 MiB a partition) would buffer thousands of jobs and
		// most of a 64 Mi memory limit.
		kgo.FetchMaxBytes(1<<20),
		kgo.FetchMaxPartitionBytes(64<<10),
		kgo.OnPartitionsRevoked(w.onRevoked),
		kgo.OnPartitionsLost(w.onLost),
	)
	if err != nil {
		return nil, fmt.Errorf("worker: Kafka client: %w", err)
	}
	w.cl = cl
	return w, nil
}

// onRevoked commits what finished on partitions being taken away, then
// forgets them: their unfinished records go to the next owner.
func (w *Worker) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	w.commit(ctx, revoked)
	w.tracker.drop(revoked)
}

// onLost forgets partitions lost without a chance to commit.
func (w *Worker) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	w.tracker.drop(lost)
}

// commit commits the finished prefix of every partition (or of only).
func (w *Worker) commit(ctx context.Context, only map[string][]int32) {
	offsets := w.tracker.uncommitted(only)
	if len(offsets) == 0 {
		return
	}
	var commitErr error
	w.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			commitErr = commitResponseErr(resp)
		}
	})
	if commitErr != nil {
		w.m.commitErrors.Inc()
		w.opts.Log.Warn("offset commit failed; it is retried", "err", commitErr)
		return
	}
	w.tracker.committed(offsets)
}

// commitResponseErr is the first partition error of a commit response.
func commitResponseErr(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("committing %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// Run consumes until ctx ends, then drains: no new jobs, jobs in flight
// finish (up to DrainTimeout), finished offsets are committed, and the
// worker leaves the group.
func (w *Worker) Run(ctx context.Context) error {
	defer w.cl.Close()
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()

	var wg sync.WaitGroup
	for range w.opts.ConcurrentJobs {
		wg.Go(func() { w.processLoop(jobCtx) })
	}
	var bg sync.WaitGroup
	bg.Go(func() { w.delayLoop(ctx) })
	bg.Go(func() { w.commitLoop(ctx) })

	w.pollLoop(ctx)

	// Drain: stop handing out jobs (both senders have stopped once bg is
	// done), let the running ones finish.
	bg.Wait()
	w.stopping.Store(true)
	close(w.ready)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.opts.DrainTimeout):
		w.opts.Log.Warn("drain deadline passed; unfinished jobs will be redelivered", "timeout", w.opts.DrainTimeout)
		cancelJobs()
		<-done
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.commit(cctx, nil)
	w.cl.LeaveGroup()
	return nil
}

// pollLoop fetches records while there is room for them.
func (w *Worker) pollLoop(ctx context.Context) {
	budget := int64(4 * w.opts.ConcurrentJobs)
	for ctx.Err() == nil {
		free := budget - w.inReady.Load()
		if free <= 0 {
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		fetches := w.cl.PollRecords(ctx, int(free))
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.opts.Log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) {
			it := &item{rec: r, part: w.tracker.add(r)}
			if err := crawl.Decode(r.Value, &it.job); err != nil {
				w.opts.Log.Error("dropping undecodable record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				w.m.jobs.WithLabelValues("dropped").Inc()
				w.tracker.done(it.part, r.Offset)
				return
			}
			if it.job.NotBefore.After(now) {
				w.delay(it)
				return
			}
			w.inReady.Add(1)
			w.ready <- it
		})
	}
}

// processLoop runs jobs from the ready queue.
func (w *Worker) processLoop(ctx context.Context) {
	for it := range w.ready {
		if !w.stopping.Load() && w.tracker.owns(it.rec, it.part) {
			w.m.inFlight.Inc()
			if w.process(ctx, it.job) {
				w.tracker.done(it.part, it.rec.Offset)
			}
			w.m.inFlight.Dec()
		}
		w.inReady.Add(-1)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// process runs a job to its end, trying again when Kafka or Redis fail. It
// reports false when it gave up because the worker is stopping: the record
// stays uncommitted and is redelivered.
func (w *Worker) process(ctx context.Context, job crawl.Job) bool {
	wait := 100 * time.Millisecond
	for {
		err := w.handle(ctx, job)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.m.infraErrors.Inc()
		w.opts.Log.Warn("job could not finish; trying again", "url", job.URL, "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// commitLoop commits finished offsets every half second.
func (w *Worker) commitLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.commit(ctx, nil)
		}
	}
}

// backoff is the delay before attempt (1-based) of a retry: exponential
// from BackoffBase with full jitter, at most BackoffMax, never less than a
// Retry-After the site sent.
func (w *Worker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := w.opts.BackoffBase << min(attempt-1, 20)
	ceiling = min(ceiling, w.opts.BackoffMax)
	d := ceiling/2 + rand.N(ceiling/2+1)
	return max(d, min(retryAfter, 10*time.Minute))
}

// delay holds a retry until its not_before.
func (w *Worker) delay(it *item) {
	w.delayMu.Lock()
	heap.Push(&w.delayed, it)
	n := len(w.delayed)
	w.delayMu.Unlock()
	if n >= maxDelayed && w.retryOff.CompareAndSwap(false, true) {
		w.cl.PauseFetchTopics(topics.Retry)
	}
	select {
	case w.delayNew <- struct{}{}:
	default:
	}
}

// delayLoop releases delayed retries when they are due.
func (w *Worker) delayLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		w.delayMu.Lock()
		now := time.Now()
		for len(w.delayed) > 0 && !w.delayed[0].job.NotBefore.After(now) {
			it := heap.Pop(&w.delayed).(*item)
			w.inReady.Add(1)
			w.ready <- it
		}
		next := time.Hour
		if len(w.delayed) > 0 {
			next = w.delayed[0].job.NotBefore.Sub(now)
		}
		if len(w.delayed) < maxDelayed/2 && w.retryOff.CompareAndSwap(true, false) {
			w.cl.ResumeFetchTopics(topics.Retry)
		}
		w.delayMu.Unlock()
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.delayNew:
		}
	}
}

// delayHeap orders delayed items by not_before.
type delayHeap []*item

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].job.NotBefore.Before(h[j].job.NotBefore) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*item)) }
func (h *delayHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
