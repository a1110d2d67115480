package egress

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacing reacts to a 429 gently: a 429 at the configured rate is most
// often a burst of jitter (a stalled request arriving with the next ones),
// not a lower limit. Halving the rate on each one, as TCP does on a loss,
// left an egress at a fraction of its limit for a minute after a handful
// of 429s while its queue timed out. So a 429 pushes the queue's next slot
// one interval out and lowers the rate by a fifth, at most once per
// decreaseHoldoff (a cluster of 429s is one event); each quiet period
// without one wins back a tenth of the base rate. A target whose limit
// really is lower is still found: a fifth per second, down to a twentieth.
const (
	decreaseFactor  = 0.8
	decreaseHoldoff = time.Second
	minRateFraction = 20 // the rate never drops below base/20
)

// pacer is one pacing queue: a token bucket at the target's rate, lowered
// on 429 and raised again after quiet periods (AIMD, see decreaseFactor).
type pacer struct {
	label       string
	lim         *rate.Limiter // nil: no pacing
	base        rate.Limit
	quietPeriod time.Duration

	mu           sync.Mutex
	last429      time.Time
	lastRaise    time.Time
	lastDecrease time.Time
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

// throttled lowers the rate after a 429 (once per decreaseHoldoff) and
// spends the bucket, so this queue (and only this one) pauses.
func (pc *pacer) throttled(now time.Time) {
	if pc.lim == nil {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.last429 = now
	pc.lastRaise = now
	if now.Sub(pc.lastDecrease) >= decreaseHoldoff {
		pc.lastDecrease = now
		pc.lim.SetLimitAt(now, max(pc.lim.Limit()*decreaseFactor, pc.base/minRateFraction))
	}
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
