package local

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crawlctl/crawlctl/pkg/topics"
)

// hpaScaleUpPeriod and hpaScaleUpLimit are the Horizontal Pod
// Autoscaler's default scale-up policy, which a KEDA ScaledObject gets on
// Kubernetes: per 15 s, at most double the replicas or add 4, whichever is
// more. Jumping from 1 to 32 workers at once, as the local autoscaler
// did, started 31 processes together: on a 2-core machine that stalled
// the crawl for seconds while one worker already kept 5 egress busy.
const hpaScaleUpPeriod = 15 * time.Second

func hpaScaleUpLimit(base int) int { return max(2*base, base+4) }

// lagReadTimeout bounds one read of the frontier's consumer lag.
const lagReadTimeout = 3 * time.Second

// maxWorkers is the budget's cap, and no more than the frontier's
// partitions (KEDA's Kafka trigger without allowIdleConsumers).
func (s *Supervisor) maxWorkers() int {
	return max(s.spec.MinWorkers, min(s.plan.MaxWorkers, s.plan.Partitions))
}

// autoscale applies KEDA's Kafka rule: desired workers = ceil(frontier lag
// / lag threshold), within [min, max]; up as fast as the HPA's scale-up
// policy allows, down after a cooldown.
func (s *Supervisor) autoscale(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, lagReadTimeout)
	defer cancel()
	lag, err := topics.Lag(lctx, s.adm, topics.WorkerGroup, topics.Frontier)
	if err != nil {
		s.log.Warn("autoscaler: reading lag", "err", err)
		return
	}
	var total int64
	for _, l := range lag {
		total += l.Lag
	}
	s.m.lag.Set(float64(total))
	desired := int(math.Ceil(float64(total) / float64(s.spec.LagThreshold)))
	desired = max(s.spec.MinWorkers, min(desired, s.maxWorkers()))
	s.mu.Lock()
	current := len(s.children[compWorker])
	s.mu.Unlock()
	if now := time.Now(); now.Sub(s.scaleWindow) >= hpaScaleUpPeriod {
		s.scaleWindow, s.scaleBase = now, current
	}
	desired = min(desired, max(current, hpaScaleUpLimit(s.scaleBase)))
	s.m.desired.WithLabelValues(compWorker).Set(float64(desired))
	switch {
	case desired > current:
		s.log.Info("scaling workers up", "from", current, "to", desired, "lag", total)
		for i := current; i < desired; i++ {
			if err := s.addChild(compWorker, i); err != nil {
				s.log.Error("starting a worker", "err", err)
				return
			}
		}
		s.lastUp = time.Now()
	case desired < current && time.Since(s.lastUp) >= s.spec.Cooldown:
		s.log.Info("scaling workers down", "from", current, "to", desired, "lag", total)
		for _, c := range s.shrink(compWorker, desired) {
			go c.stop(drainTimeout) // drains its jobs; unfinished ones are redelivered
		}
	}
}

// updateReplicaMetrics sets the ready and desired replica gauges.
func (s *Supervisor) updateReplicaMetrics() {
	for _, comp := range []string{compProxy, compGraphWriter, compWorker} {
		cs := s.childrenOf(comp)
		var n atomic.Int64
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				if c.ready() {
					n.Add(1)
				}
			})
		}
		wg.Wait()
		s.m.replicas.WithLabelValues(comp).Set(float64(n.Load()))
		if comp != compWorker {
			s.m.desired.WithLabelValues(comp).Set(float64(len(cs)))
		}
	}
}
