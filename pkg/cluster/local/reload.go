package local

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/pkg/topics"
)

// reload applies a changed spec.json without stopping the stack: the
// broker, Redis, the simulator and the API keep the run in progress;
// partitions grow, proxies and graph writers are added or stopped, browser
// workers are added or drained (the grid with the first and the last), and
// workers are restarted one at a time (each drains; what it had not
// finished is redelivered) when their proxies or assignment changed.
func (s *Supervisor) reload(ctx context.Context) error {
	spec, err := readSpec(s.dir)
	if err != nil {
		return err
	}
	if fixed := spec.fixedFields(s.spec); len(fixed) > 0 {
		return fmt.Errorf("cannot change %s while up", strings.Join(fixed, ", "))
	}
	plan := spec.Plan
	if plan.Partitions > s.plan.Partitions {
		kcl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
		if err != nil {
			return err
		}
		err = topics.Ensure(ctx, kcl, plan.Partitions)
		kcl.Close()
		if err != nil {
			return err
		}
	}
	s.log.Info("applying new settings", "proxies", fmt.Sprintf("%d→%d", s.plan.Proxies, plan.Proxies),
		"graph_writers", fmt.Sprintf("%d→%d", s.plan.GraphWriters, plan.GraphWriters), "max_workers", plan.MaxWorkers,
		"grid_workers", fmt.Sprintf("%d→%d", s.plan.GridWorkers, plan.GridWorkers))
	oldProxies, oldAssignment := s.plan.Proxies, s.spec.ProxyAssignment
	s.spec, s.plan = spec, plan
	// In force from now: new proxies and graph writers start at once, and
	// workers roll onto them over the next seconds.
	s.recordSettings()
	for i := oldProxies; i < plan.Proxies; i++ {
		if err := s.addProxy(i); err != nil {
			return err
		}
	}
	for _, c := range s.shrink(compProxy, plan.Proxies) {
		c.stop(drainTimeout)
	}
	if len(s.proxies) > plan.Proxies {
		s.proxies = s.proxies[:plan.Proxies]
	}
	for i := len(s.childrenOf(compGraphWriter)); i < plan.GraphWriters; i++ {
		if err := s.addChild(compGraphWriter, i); err != nil {
			return err
		}
	}
	for _, c := range s.shrink(compGraphWriter, plan.GraphWriters) {
		c.stop(drainTimeout)
	}
	if plan.Proxies != oldProxies || spec.ProxyAssignment != oldAssignment {
		// Roll the workers onto the new pool, one at a time.
		for _, c := range s.childrenOf(compWorker) {
			c.stop(drainTimeout)
			if err := s.replaceChild(c); err != nil {
				return err
			}
		}
	}
	if err := s.scaleGrid(ctx, plan.GridWorkers); err != nil {
		return err
	}
	if err := s.waitReady(ctx, s.readyTimeout); err != nil {
		return err
	}
	s.log.Info("new settings applied")
	return nil
}
