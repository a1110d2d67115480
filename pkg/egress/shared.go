package egress

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// sharedPacing keeps pacing state in Redis so that every worker process
// draws on the same budget per (egress, host): with each worker pacing on
// its own, N workers would send N times the rate through one egress IP.
// Each queue is a GCRA (a theoretical arrival time and an emission
// interval) in one hash; one script picks, among a request's candidate
// queues, the one with the earliest slot and takes it.
type sharedPacing struct {
	rdb         redis.UniversalClient
	base        time.Duration // emission interval at the configured rate
	quietPeriod time.Duration
}

// reserveScript: KEYS are candidate queues; ARGV: now (ms), base interval
// (ms), quiet period (ms). Returns {index (1-based), delay ms, interval ms}.
// An interval above the base is shortened (rate + base/10) once a quiet
// period has passed without a 429 (the additive half of AIMD).
var reserveScript = redis.NewScript(`
local now, base, quiet = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local best, bestTat, bestIv = 0, 0, 0
for i, k in ipairs(KEYS) do
  local h = redis.call('HMGET', k, 'tat', 'iv', 'l429', 'lraise')
  local tat = math.max(tonumber(h[1]) or now, now)
  local iv = tonumber(h[2]) or base
  local l429, lraise = tonumber(h[3]) or 0, tonumber(h[4]) or 0
  if iv > base and now - l429 >= quiet and now - lraise >= quiet then
    iv = math.max(base, 1 / (1 / iv + 1 / base / 10))
    redis.call('HSET', k, 'iv', iv, 'lraise', now)
  end
  if best == 0 or tat < bestTat then best, bestTat, bestIv = i, tat, iv end
end
local k = KEYS[best]
redis.call('HSET', k, 'tat', bestTat + bestIv)
redis.call('PEXPIRE', k, 600000)
return {best, tostring(bestTat - now), tostring(bestIv)}`)

// throttleScript pushes a queue's next slot one interval out and, once per
// holdoff, lowers its rate by the decrease factor (its interval at most
// minRateFraction times the base): see decreaseFactor. ARGV: now (ms),
// base (ms), holdoff (ms), factor, fraction.
var throttleScript = redis.NewScript(`
local now, base, holdoff = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local factor, fraction = tonumber(ARGV[4]), tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'tat', 'iv', 'ldec')
local iv = tonumber(h[2]) or base
local ldec = tonumber(h[3]) or 0
if now - ldec >= holdoff then
  iv = math.min(iv / factor, base * fraction)
  ldec = now
end
local tat = math.max(tonumber(h[1]) or now, now) + iv
redis.call('HSET', KEYS[1], 'tat', tat, 'iv', iv, 'l429', now, 'lraise', now, 'ldec', ldec)
redis.call('PEXPIRE', KEYS[1], 600000)
return tostring(iv)`)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reserve takes the earliest slot among keys: its index, how long to wait,
// and the queue's current rate.
func (s *sharedPacing) reserve(ctx context.Context, keys []string) (int, time.Duration, float64, error) {
	res, err := reserveScript.Run(ctx, s.rdb, keys, time.Now().UnixMilli(), ms(s.base), ms(s.quietPeriod)).Slice()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("shared pacing: %w", err)
	}
	idx, _ := res[0].(int64)
	var delay, iv float64
	fmt.Sscan(res[1].(string), &delay)
	fmt.Sscan(res[2].(string), &iv)
	if idx < 1 || int(idx) > len(keys) {
		return 0, 0, 0, fmt.Errorf("shared pacing: bad answer %v", res)
	}
	rate := 0.0
	if iv > 0 {
		rate = 1000 / iv
	}
	return int(idx) - 1, time.Duration(delay * float64(time.Millisecond)), rate, nil
}

func (s *sharedPacing) throttled(ctx context.Context, key string) error {
	return throttleScript.Run(ctx, s.rdb, []string{key}, time.Now().UnixMilli(), ms(s.base), ms(decreaseHoldoff),
		decreaseFactor, minRateFraction).Err()
}

// paceKey names a queue; the host is the hash tag, so all of a host's
// queues share a cluster slot and one script can compare them.
func paceKey(host, egress string) string { return "crawl:pace:{" + host + "}:" + egress }
