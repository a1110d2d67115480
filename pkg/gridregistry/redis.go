package gridregistry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis layout, as the seed's grid keeps it, plus a lease set.
const (
	keyWorkers  = "cluster:workers"              // set of worker ids
	keyWorker   = "cluster:worker:"              // + id: hash endpoint, status, heartbeat, ...
	keyActive   = "cluster:active_connections"   // hash id → live sessions
	keyLifetime = "cluster:lifetime_connections" // hash id → sessions since the browser started
	keyLeases   = "cluster:leases"               // zset "id|session" → lease expiry (ms)
)

// Every script reads the time from Redis, so proxies and workers on
// different clocks agree on heartbeats and leases.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaExpire drops expired leases (KEYS[1] active, KEYS[3] leases) with
// their active counts: a dead proxy's sessions stop counting.
const luaExpire = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, m in ipairs(expired) do
  local id = string.match(m, '^(.*)|[^|]*$')
  if id and redis.call('HINCRBY', KEYS[1], id, -1) < 0 then redis.call('HSET', KEYS[1], id, 0) end
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
`

// selectScript is choose (registry.go) in Lua. KEYS: active, lifetime,
// leases, then one worker hash per registered worker. ARGV: browser,
// session, stale ms, lease ms, stagger-from, excluded ids (comma-joined).
var selectScript = redis.NewScript(luaNow + luaExpire + `
local browser, session = ARGV[1], ARGV[2]
local stale, lease, staggerFrom = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local excluded = {}
for id in string.gmatch(ARGV[6], '[^,]+') do excluded[id] = true end
local live, draining, group = {}, 0, 0
for i = 4, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'id', 'endpoint', 'control', 'browser', 'status', 'heartbeat', 'max_concurrent', 'max_lifetime')
  if f[1] and f[4] == browser and now - tonumber(f[6]) <= stale then
    group = group + 1
    if f[5] == 'draining' then
      draining = draining + 1
    elseif f[5] == 'available' and not excluded[f[1]] then
      table.insert(live, {key = KEYS[i], id = f[1], endpoint = f[2], control = f[3],
        maxc = tonumber(f[7]), maxl = tonumber(f[8]),
        active = tonumber(redis.call('HGET', KEYS[1], f[1]) or '0'),
        lifetime = tonumber(redis.call('HGET', KEYS[2], f[1]) or '0')})
    end
  end
end
local function better(a, b)
  if a.lifetime ~= b.lifetime then return a.lifetime > b.lifetime end
  if a.active ~= b.active then return a.active < b.active end
  return a.id < b.id
end
local best, bestPrimary = nil, false
for _, c in ipairs(live) do
  local ok = c.active < c.maxc and c.lifetime < c.maxl
  if ok and draining > 0 and group >= staggerFrom and c.lifetime + 1 >= c.maxl then ok = false end
  if ok then
    local margin = math.max(1, math.floor(c.maxl / #live))
    local primary = c.lifetime < c.maxl - margin
    if best == nil or (primary and not bestPrimary) or (primary == bestPrimary and better(c, best)) then
      best, bestPrimary = c, primary
    end
  end
end
if best == nil then return false end
redis.call('HINCRBY', KEYS[1], best.id, 1)
local lifetime = redis.call('HINCRBY', KEYS[2], best.id, 1)
redis.call('ZADD', KEYS[3], now + lease, best.id .. '|' .. session)
if lifetime >= best.maxl then redis.call('HSET', best.key, 'status', 'draining') end
return {best.id, best.endpoint, best.control, browser, best.maxc, best.maxl, lifetime}
`)

// registerScript: KEYS workers, worker hash, lifetime, active. ARGV id,
// endpoint, control, browser, max concurrent, max lifetime, reset (1/0).
var registerScript = redis.NewScript(luaNow + `
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'endpoint', ARGV[2], 'control', ARGV[3], 'browser', ARGV[4],
  'max_concurrent', ARGV[5], 'max_lifetime', ARGV[6], 'status', 'available', 'heartbeat', now)
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[7] == '1' then redis.call('HSET', KEYS[3], ARGV[1], 0) else redis.call('HSETNX', KEYS[3], ARGV[1], 0) end
redis.call('HSETNX', KEYS[4], ARGV[1], 0)
return 1
`)

// setFieldScript sets a field of an existing worker hash (KEYS[1]):
// ARGV field, value, or the server's time when value is empty.
var setFieldScript = redis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = ARGV[2]
if v == '' then v = now end
redis.call('HSET', KEYS[1], ARGV[1], v)
return 1
`)

// releaseScript: KEYS active, leases. ARGV worker id, lease member.
var releaseScript = redis.NewScript(`
if redis.call('ZREM', KEYS[2], ARGV[2]) == 1 and redis.call('HINCRBY', KEYS[1], ARGV[1], -1) < 0 then
  redis.call('HSET', KEYS[1], ARGV[1], 0)
end
return 1
`)

// cancelScript: KEYS active, lifetime, leases, worker hash. ARGV worker
// id, lease member.
var cancelScript = redis.NewScript(`
if redis.call('ZREM', KEYS[3], ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) < 0 then redis.call('HSET', KEYS[1], ARGV[1], 0) end
local lifetime = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if lifetime > 0 then
  local f = redis.call('HMGET', KEYS[4], 'status', 'max_lifetime')
  if f[1] == 'draining' and lifetime == tonumber(f[2]) then redis.call('HSET', KEYS[4], 'status', 'available') end
  redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
end
return 1
`)

// renewScript: KEYS leases. ARGV lease ms, then members; only leases that
// still exist are extended.
var renewScript = redis.NewScript(luaNow + `
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 1
`)

// expireScript: KEYS active, lifetime (unused), leases.
var expireScript = redis.NewScript(luaNow + luaExpire + `return 1`)

// Redis is the registry shared by grid proxies and workers through Redis.
type Redis struct {
	rdb    redis.UniversalClient
	policy Policy
}

// NewRedis uses rdb (see runstate.Dial) with policy p.
func NewRedis(rdb redis.UniversalClient, p Policy) *Redis { return &Redis{rdb: rdb, policy: p} }

func member(worker, session string) string { return worker + "|" + session }

func (r *Redis) Register(ctx context.Context, w WorkerInfo, reset bool) error {
	if strings.ContainsAny(w.ID, "|,") {
		return fmt.Errorf("worker id %q: '|' and ',' are not allowed", w.ID)
	}
	rs := "0"
	if reset {
		rs = "1"
	}
	err := registerScript.Run(ctx, r.rdb, []string{keyWorkers, keyWorker + w.ID, keyLifetime, keyActive},
		w.ID, w.Endpoint, w.Control, w.Browser, w.MaxConcurrent, w.MaxLifetime, rs).Err()
	if err != nil {
		return fmt.Errorf("registering worker %s in Redis: %w", w.ID, err)
	}
	return nil
}

func (r *Redis) setField(ctx context.Context, id, field, value string) error {
	n, err := setFieldScript.Run(ctx, r.rdb, []string{keyWorker + id}, field, value).Int()
	if err != nil {
		return fmt.Errorf("updating worker %s in Redis: %w", id, err)
	}
	if n == 0 {
		return ErrUnknownWorker
	}
	return nil
}

func (r *Redis) Heartbeat(ctx context.Context, id string) error {
	return r.setField(ctx, id, "heartbeat", "")
}

func (r *Redis) SetStatus(ctx context.Context, id string, st Status) error {
	return r.setField(ctx, id, "status", string(st))
}

func (r *Redis) Unregister(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keyWorker+id)
		p.SRem(ctx, keyWorkers, id)
		p.HDel(ctx, keyLifetime, id)
		p.HDel(ctx, keyActive, id)
		return nil
	})
	return err
}

func (r *Redis) Select(ctx context.Context, req Request) (Selection, error) {
	ids, err := r.rdb.SMembers(ctx, keyWorkers).Result()
	if err != nil {
		return Selection{}, fmt.Errorf("listing grid workers in Redis: %w", err)
	}
	keys := []string{keyActive, keyLifetime, keyLeases}
	for _, id := range ids {
		keys = append(keys, keyWorker+id)
	}
	res, err := selectScript.Run(ctx, r.rdb, keys, req.Browser, req.Session, r.policy.Stale.Milliseconds(),
		r.policy.Lease.Milliseconds(), r.policy.StaggerFrom, strings.Join(req.Exclude, ",")).Slice()
	if err == redis.Nil {
		return Selection{}, ErrNoWorker
	}
	if err != nil {
		return Selection{}, fmt.Errorf("selecting a grid worker in Redis: %w", err)
	}
	str := func(i int) string { s, _ := res[i].(string); return s }
	num := func(i int) int { n, _ := res[i].(int64); return int(n) }
	sel := Selection{
		WorkerInfo: WorkerInfo{ID: str(0), Endpoint: str(1), Control: str(2), Browser: str(3),
			MaxConcurrent: num(4), MaxLifetime: num(5)},
		Lifetime: num(6),
	}
	sel.AtLimit = sel.Lifetime >= sel.MaxLifetime
	return sel, nil
}

func (r *Redis) Release(ctx context.Context, workerID, session string) error {
	return releaseScript.Run(ctx, r.rdb, []string{keyActive, keyLeases}, workerID, member(workerID, session)).Err()
}

func (r *Redis) Cancel(ctx context.Context, workerID, session string) error {
	return cancelScript.Run(ctx, r.rdb, []string{keyActive, keyLifetime, keyLeases, keyWorker + workerID},
		workerID, member(workerID, session)).Err()
}

func (r *Redis) Renew(ctx context.Context, sessions map[string][]string) error {
	args := []any{r.policy.Lease.Milliseconds()}
	for w, ss := range sessions {
		for _, s := range ss {
			args = append(args, member(w, s))
		}
	}
	if len(args) == 1 {
		return nil
	}
	return renewScript.Run(ctx, r.rdb, []string{keyLeases}, args...).Err()
}

func (r *Redis) Workers(ctx context.Context) ([]Worker, error) {
	if err := expireScript.Run(ctx, r.rdb, []string{keyActive, keyLifetime, keyLeases}).Err(); err != nil {
		return nil, fmt.Errorf("reading grid workers from Redis: %w", err)
	}
	ids, err := r.rdb.SMembers(ctx, keyWorkers).Result()
	if err != nil {
		return nil, fmt.Errorf("reading grid workers from Redis: %w", err)
	}
	p := r.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = p.HGetAll(ctx, keyWorker+id)
	}
	active := p.HGetAll(ctx, keyActive)
	lifetime := p.HGetAll(ctx, keyLifetime)
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading grid workers from Redis: %w", err)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	var out []Worker
	for _, h := range hashes {
		f := h.Val()
		if f["id"] == "" {
			continue
		}
		hb, _ := strconv.ParseInt(f["heartbeat"], 10, 64)
		out = append(out, Worker{
			WorkerInfo: WorkerInfo{ID: f["id"], Endpoint: f["endpoint"], Control: f["control"], Browser: f["browser"],
				MaxConcurrent: atoi(f["max_concurrent"]), MaxLifetime: atoi(f["max_lifetime"])},
			Status:    Status(f["status"]),
			Heartbeat: time.UnixMilli(hb),
			Active:    atoi(active.Val()[f["id"]]),
			Lifetime:  atoi(lifetime.Val()[f["id"]]),
		})
	}
	sortWorkers(out)
	return out, nil
}

func (r *Redis) Close() error { return r.rdb.Close() }
