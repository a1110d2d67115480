package egress

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacer is one pacing queue: a token bucket at the target's rate, halved on
// a 429 (down to a twentieth of the base) and raised by a tenth of the base
// after each quiet period without one (AIMD).
type pacer struct {
	label       string
	lim         *rate.Limiter // nil: no pacing
	base        rate.Limit
	quietPeriod time.Duration

	mu        sync.Mutex
	last429   time.Time
	lastRaise time.Time
}

func newPacer(o Options, label string) *pacer {
	pc := &pacer{label: label, quietPeriod: o.QuietPeriod}
	if o.Rate > 0 {
		pc.base = rate.Limit(o.Rate)
		pc.lim = rate.NewLimiter(pc.base, o.Burst)
	}
	return pc
}

func (pc *pacer) limit() float64 {
	if pc.lim == nil {
		return 0
	}
	return float64(pc.lim.Limit())
}

// throttled lowers the rate after a 429 and spends the bucket, so this
// queue (and only this one) pauses.
func (pc *pacer) throttled(now time.Time) {
	if pc.lim == nil {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.last429 = now
	pc.lastRaise = now
	pc.lim.SetLimitAt(now, max(pc.lim.Limit()/2, pc.base/20))
	if n := int(pc.lim.TokensAt(now)); n > 0 {
		pc.lim.AllowN(now, n)
	}
}

// quiet raises the rate additively once a quiet period has passed.
func (pc *pacer) quiet(now time.Time) {
	if pc.lim == nil {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	cur := pc.lim.Limit()
	if cur >= pc.base || now.Sub(pc.last429) < pc.quietPeriod || now.Sub(pc.lastRaise) < pc.quietPeriod {
		return
	}
	pc.lastRaise = now
	pc.lim.SetLimitAt(now, min(pc.base, cur+pc.base/10))
}
