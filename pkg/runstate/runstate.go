// Package runstate keeps crawl runs and their accounting in a Redis-protocol
// store: each enqueued job is recorded once, each job's outcome once, so the
// counters are exact under at-least-once delivery (a redelivered job or a
// re-enqueue by a redelivered parent counts nothing twice). Dedupe claims are
// per run: rerunning the same seeds in a new run crawls again, and a failure
// never blocks a URL for other runs.
//
// Keys carry the run id as a hash tag ({id}) so one run's keys share a
// cluster slot and the Lua scripts may touch several of them.
package runstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outcomes of a job. Every enqueued job ends as exactly one of these.
const (
	Crawled = "crawled"
	Deduped = "deduped"
	DLQ     = "dlq"
)

// Run states.
const (
	StateRunning = "running"
	StateDrained = "drained"
)

// Retention is how long a run's keys live after its last update.
const Retention = 7 * 24 * time.Hour

// Run is a crawl run's description and counters.
type Run struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Target    string    `json:"target"`
	MaxDepth  int       `json:"max_depth"`
	Seeds     []string  `json:"seeds"`
	CreatedAt time.Time `json:"created_at"`
	State     string    `json:"state"`
	// DrainedAt is when the last outcome made the run drained.
	DrainedAt time.Time `json:"drained_at,omitzero"`
	Counters  Counters  `json:"counters"`
	// DLQByReason counts DLQ outcomes by failure reason.
	DLQByReason map[string]int64 `json:"dlq_by_reason"`
}

// Counters are a run's totals.
type Counters struct {
	Enqueued     int64 `json:"enqueued"`
	Crawled      int64 `json:"crawled"`
	Deduped      int64 `json:"deduped"`
	DLQ          int64 `json:"dlq"`
	Retried      int64 `json:"retried"`
	EdgesWritten int64 `json:"edges_written"`
	NodesWritten int64 `json:"nodes_written"`
}

// Finished is crawled + deduped + dlq: when it equals Enqueued the run has
// drained.
func (c Counters) Finished() int64 { return c.Crawled + c.Deduped + c.DLQ }

func init() {
	// go-redis logs dial failures with the standard logger; send them to
	// slog at debug level: Open reports them as errors already.
	redis.SetLogger(slogLogger{})
}

type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, fmt.Sprintf(format, v...), "source", "go-redis")
}

// Store is the run store.
type Store struct {
	rdb redis.UniversalClient
	// DedupeTTL is how long a URL claim lives.
	DedupeTTL time.Duration
}

// New wraps a Redis client.
func New(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, DedupeTTL: 48 * time.Hour}
}

// Open connects to the Redis-protocol server at addr (host:port or a
// redis:// URL) and checks it answers.
func Open(ctx context.Context, addr string) (*Store, error) {
	rdb, err := Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return New(rdb), nil
}

// Dial connects to the Redis-protocol server at addr (host:port or a
// redis:// URL) and checks it answers; the browser grid's registry uses it
// too.
func Dial(ctx context.Context, addr string) (*redis.Client, error) {
	opts := &redis.Options{Addr: addr}
	if u, err := redis.ParseURL(addr); err == nil {
		opts = u
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	// Commands and replies are small: go-redis's default 32 KiB buffers per
	// connection would be most of a worker's heap.
	opts.ReadBufferSize, opts.WriteBufferSize = 4<<10, 4<<10
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("connecting to Redis at %s: %w", opts.Addr, err)
	}
	return rdb, nil
}

// Client is the store's Redis client, for other state that lives beside
// the runs (the egress pool's shared pacing).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Close closes the connection.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping checks the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

const runsKey = "crawl:runs"

func runKey(id string) string  { return "crawl:{" + id + "}:run" }
func jobsKey(id string) string { return "crawl:{" + id + "}:jobs" }
func seenKey(id, url string) string {
	h := sha256.Sum256([]byte(url))
	return "crawl:{" + id + "}:seen:" + hex.EncodeToString(h[:16])
}

// ErrNotFound is returned for a run id the store does not know.
var ErrNotFound = errors.New("run not found")

// Create records a new run.
func (s *Store) Create(ctx context.Context, r Run) error {
	seeds, err := json.Marshal(r.Seeds)
	if err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, runKey(r.ID), map[string]any{
		"id": r.ID, "name": r.Name, "target": r.Target, "max_depth": r.MaxDepth,
		"seeds": string(seeds), "created_at": r.CreatedAt.UTC().Format(time.RFC3339Nano),
	})
	pipe.Expire(ctx, runKey(r.ID), Retention)
	pipe.ZAdd(ctx, runsKey, redis.Z{Score: float64(r.CreatedAt.UnixMilli()), Member: r.ID})
	_, err = pipe.Exec(ctx)
	return err
}

// enqueueScript records job ids as pending; only new ones count.
var enqueueScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV - 1 do
  n = n + redis.call('HSETNX', KEYS[2], ARGV[i], 'p')
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'enqueued', n)
end
redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
redis.call('PEXPIRE', KEYS[2], ARGV[#ARGV])
return n`)

// Enqueue records jobs as enqueued and returns how many were new. Call it
// before producing the jobs: a crash in between leaves them counted, and the
// redelivered parent produces them again.
func (s *Store) Enqueue(ctx context.Context, run string, jobIDs ...string) (int, error) {
	if len(jobIDs) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(jobIDs)+1)
	for _, id := range jobIDs {
		args = append(args, id)
	}
	args = append(args, Retention.Milliseconds())
	n, err := enqueueScript.Run(ctx, s.rdb, []string{runKey(run), jobsKey(run)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("recording enqueued jobs of run %s: %w", run, err)
	}
	return n, nil
}

// outcomeScript records a pending job's outcome once and stamps the drain
// time when it was the last one.
var outcomeScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= 'p' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], 'dlq:' .. ARGV[3], 1) end
local c = redis.call('HMGET', KEYS[1], 'enqueued', 'crawled', 'deduped', 'dlq')
local done = (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0) + (tonumber(c[4]) or 0)
if done == (tonumber(c[1]) or 0) then
  redis.call('HSET', KEYS[1], 'drained_at', ARGV[4])
end
return 1`)

// Outcome records how a job ended; reason is the DLQ reason (or empty). It
// reports false when the job already had an outcome (a redelivery).
func (s *Store) Outcome(ctx context.Context, run, jobID, outcome, reason string) (bool, error) {
	if outcome != DLQ {
		reason = ""
	}
	n, err := outcomeScript.Run(ctx, s.rdb, []string{runKey(run), jobsKey(run)},
		jobID, outcome, reason, time.Now().UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fmt.Errorf("recording outcome of job %s: %w", jobID, err)
	}
	return n == 1, nil
}

// Done reports whether a job already has its outcome.
func (s *Store) Done(ctx context.Context, run, jobID string) (bool, error) {
	v, err := s.rdb.HGet(ctx, jobsKey(run), jobID).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return v != "p", nil
}

// claimScript takes a URL for a job, or confirms the job already holds it.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
return 0`)

// Claim takes url for jobID in run (SET NX with a TTL). It reports false
// when another job of the run holds the URL: this job is a duplicate.
func (s *Store) Claim(ctx context.Context, run, url, jobID string) (bool, error) {
	n, err := claimScript.Run(ctx, s.rdb, []string{seenKey(run, url)}, jobID, s.DedupeTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("claiming %s: %w", url, err)
	}
	return n == 1, nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Release gives up jobID's claim on url (after a failure), so a later
// discovery of the URL in the same run may try it again.
func (s *Store) Release(ctx context.Context, run, url, jobID string) error {
	return releaseScript.Run(ctx, s.rdb, []string{seenKey(run, url)}, jobID).Err()
}

// AddRetried counts a retry scheduled for the run.
func (s *Store) AddRetried(ctx context.Context, run string) error {
	return s.rdb.HIncrBy(ctx, runKey(run), "retried", 1).Err()
}

// setMaxScript raises hash fields to the given values, never lowers them.
var setMaxScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or 0
  if tonumber(ARGV[i+1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
end
return 0`)

// SetWritten records the graph store's row counts for a run. Rows only
// grow, so a count read earlier by another graph writer never lowers it.
func (s *Store) SetWritten(ctx context.Context, run string, nodes, edges int64) error {
	return setMaxScript.Run(ctx, s.rdb, []string{runKey(run)}, "nodes_written", nodes, "edges_written", edges).Err()
}

// Get returns a run with its counters.
func (s *Store) Get(ctx context.Context, id string) (*Run, error) {
	h, err := s.rdb.HGetAll(ctx, runKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", id, err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	r := &Run{ID: id, Name: h["name"], Target: h["target"], DLQByReason: map[string]int64{}}
	r.MaxDepth, _ = strconv.Atoi(h["max_depth"])
	_ = json.Unmarshal([]byte(h["seeds"]), &r.Seeds)
	r.CreatedAt, _ = time.Parse(time.RFC3339Nano, h["created_at"])
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	r.Counters = Counters{
		Enqueued: num("enqueued"), Crawled: num(Crawled), Deduped: num(Deduped), DLQ: num(DLQ),
		Retried: num("retried"), EdgesWritten: num("edges_written"), NodesWritten: num("nodes_written"),
	}
	for k, v := range h {
		if reason, ok := strings.CutPrefix(k, "dlq:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.DLQByReason[reason] = n
		}
	}
	r.State = StateRunning
	if r.Counters.Enqueued > 0 && r.Counters.Finished() == r.Counters.Enqueued {
		r.State = StateDrained
		r.DrainedAt, _ = time.Parse(time.RFC3339Nano, h["drained_at"])
	}
	return r, nil
}

// List returns the newest runs first, at most n.
func (s *Store) List(ctx context.Context, n int64) ([]*Run, error) {
	ids, err := s.rdb.ZRevRange(ctx, runsKey, 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	var out []*Run
	for _, id := range ids {
		r, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // expired
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
