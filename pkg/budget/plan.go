// Package budget sizes the crawl stack to one node. It is the one place
// crawlctl's requests, limits and replica caps live: the charts, KEDA and the
// local provider all read a Plan.
//
// The model: every component but the workers and graph writers has a fixed
// replica count. The remainder is the node memory minus those components'
// limits; workers and graph writers share it, so the combined replica cap is
// floor(remainder / per-pod limit), and KEDA's maxReplicaCount for workers is
// that cap minus the graph writers, or fewer where the node's CPU requests
// would leave the rest Pending.
package budget

import (
	"fmt"
	"slices"
)

// Component is one row of a plan: a workload and its per-pod sizes.
type Component struct {
	Name            string `json:"name"`
	Replicas        int    `json:"replicas"`
	RequestMemoryMi int64  `json:"requestMemoryMi"`
	LimitMemoryMi   int64  `json:"limitMemoryMi"`
	RequestCPUm     int64  `json:"requestCPUm"`
	LimitCPUm       int64  `json:"limitCPUm"`
	// Totals are per-pod figures times replicas.
	TotalRequestMemoryMi int64 `json:"totalRequestMemoryMi"`
	TotalLimitMemoryMi   int64 `json:"totalLimitMemoryMi"`
	TotalRequestCPUm     int64 `json:"totalRequestCPUm"`
	TotalLimitCPUm       int64 `json:"totalLimitCPUm"`
	// Scaled marks the two components sized from the remainder (worker at
	// its cap, graph-writer at the requested count).
	Scaled bool `json:"scaled,omitempty"`
	// Reserved marks room kept for something that is not a crawlctl chart.
	Reserved bool   `json:"reserved,omitempty"`
	Note     string `json:"note,omitempty"`
}

func newComponent(name string, replicas int, r Resources) Component {
	n := int64(replicas)
	return Component{
		Name: name, Replicas: replicas,
		RequestMemoryMi: r.RequestMemoryMi, LimitMemoryMi: r.LimitMemoryMi,
		RequestCPUm: r.RequestCPUm, LimitCPUm: r.LimitCPUm,
		TotalRequestMemoryMi: n * r.RequestMemoryMi, TotalLimitMemoryMi: n * r.LimitMemoryMi,
		TotalRequestCPUm: n * r.RequestCPUm, TotalLimitCPUm: n * r.LimitCPUm,
	}
}

// Totals sums the components' totals.
type Totals struct {
	RequestMemoryMi int64 `json:"requestMemoryMi"`
	LimitMemoryMi   int64 `json:"limitMemoryMi"`
	RequestCPUm     int64 `json:"requestCPUm"`
	LimitCPUm       int64 `json:"limitCPUm"`
}

// Comparison is this plan against the reference profile with the same input.
type Comparison struct {
	Profile          Profile `json:"profile"`
	Fits             bool    `json:"fits"`
	RemainderMi      int64   `json:"remainderMi"`
	MaxReplicas      int     `json:"maxReplicas"`
	DeltaRemainderMi int64   `json:"deltaRemainderMi"`
	DeltaMaxReplicas int     `json:"deltaMaxReplicas"`
}

// Plan is a computed budget.
type Plan struct {
	Profile      Profile `json:"profile"`
	NodeMemoryMi int64   `json:"nodeMemoryMi"`
	NodeCPUm     int64   `json:"nodeCPUm"`
	Proxies      int     `json:"proxies"`
	GraphWriters int     `json:"graphWriters"`
	GridWorkers  int     `json:"gridWorkers"`
	Partitions   int     `json:"partitions"`
	// FixedLimitMi is the memory limit of every component but the two
	// scaled ones; RemainderMi is what is left of the node for those.
	FixedLimitMi  int64 `json:"fixedLimitMi"`
	RemainderMi   int64 `json:"remainderMi"`
	PerPodLimitMi int64 `json:"perPodLimitMi"`
	MaxReplicas   int   `json:"maxReplicas"`
	MaxWorkers    int   `json:"maxWorkers"`
	// MaxWorkersByMemory is set when CPU requests, not memory, cap the
	// workers: what the memory remainder alone would hold.
	MaxWorkersByMemory  int         `json:"maxWorkersByMemory,omitempty"`
	KEDAMaxReplicaCount int         `json:"kedaMaxReplicaCount"`
	Components          []Component `json:"components"`
	Totals              Totals      `json:"totals"`
	Warnings            []string    `json:"warnings"`
	Comparison          *Comparison `json:"comparison,omitempty"`
}

// Component returns the named row, and whether the plan has it.
func (p *Plan) Component(name string) (Component, bool) {
	i := slices.IndexFunc(p.Components, func(c Component) bool { return c.Name == name })
	if i < 0 {
		return Component{}, false
	}
	return p.Components[i], true
}

// Compute checks the input and sizes the stack. Errors for bad input are
// InputErrors that say what to change.
func Compute(in Input) (*Plan, error) {
	p, err := compute(in)
	if err != nil {
		return nil, err
	}
	if in.Profile != ProfileReference {
		ref := in
		ref.Profile = ProfileReference
		cmp := &Comparison{Profile: ProfileReference}
		if rp, err := compute(ref); err == nil {
			cmp.Fits = true
			cmp.RemainderMi = rp.RemainderMi
			cmp.MaxReplicas = rp.MaxReplicas
			cmp.DeltaRemainderMi = p.RemainderMi - rp.RemainderMi
			cmp.DeltaMaxReplicas = p.MaxReplicas - rp.MaxReplicas
		}
		p.Comparison = cmp
	}
	return p, nil
}

func compute(in Input) (*Plan, error) {
	fixedOf, ok := profileFixed[in.Profile]
	if !ok {
		return nil, inputErrorf("profile %q is unknown: use one of %v", in.Profile, Profiles)
	}
	switch {
	case in.Proxies < 1:
		return nil, inputErrorf("proxies must be at least 1 (got %d): each egress proxy is one egress IP and the crawl needs one", in.Proxies)
	case in.GraphWriters < 1:
		return nil, inputErrorf("graph-writers must be at least 1 (got %d): without one no edge is stored", in.GraphWriters)
	case in.GridWorkers < 0:
		return nil, inputErrorf("grid-workers must be zero or more (got %d)", in.GridWorkers)
	case in.Partitions < 1:
		return nil, inputErrorf("partitions must be at least 1 (got %d)", in.Partitions)
	}
	nodeMem, err := parseQuantity("node-memory", in.NodeMemory)
	if err != nil {
		return nil, err
	}
	nodeCPU, err := parseQuantity("node-cpu", in.NodeCPU)
	if err != nil {
		return nil, err
	}
	proxy, err := in.Sizes.Proxy.Parse("sizes.proxy")
	if err != nil {
		return nil, err
	}
	worker, err := in.Sizes.Worker.Parse("sizes.worker")
	if err != nil {
		return nil, err
	}
	writer, err := in.Sizes.GraphWriter.Parse("sizes.graph-writer")
	if err != nil {
		return nil, err
	}
	browser, err := in.Sizes.Browser.Parse("sizes.browser")
	if err != nil {
		return nil, err
	}

	p := &Plan{
		Profile:      in.Profile,
		NodeMemoryMi: nodeMem.Value() / mebibyte, // capacity rounds down
		NodeCPUm:     nodeCPU.MilliValue(),
		Proxies:      in.Proxies,
		GraphWriters: in.GraphWriters,
		GridWorkers:  in.GridWorkers,
		Partitions:   in.Partitions,
		Warnings:     []string{},
	}
	if p.NodeMemoryMi <= 0 {
		return nil, inputErrorf("node-memory %q is less than 1Mi: give the node's memory, e.g. 8Gi", in.NodeMemory)
	}
	for _, f := range fixedOf(in) {
		c := newComponent(f.name, f.replicas, f.res)
		c.Reserved, c.Note = f.reserved, f.note
		p.Components = append(p.Components, c)
	}
	p.Components = append(p.Components, newComponent(Proxy, in.Proxies, proxy))
	if in.GridWorkers > 0 {
		p.Components = append(p.Components,
			newComponent(GridProxy, 1, gridProxySize),
			newComponent(Browser, in.GridWorkers, browser))
	}
	var fixedCPUm int64 // the fixed components' CPU requests
	for _, c := range p.Components {
		p.FixedLimitMi += c.TotalLimitMemoryMi
		fixedCPUm += c.TotalRequestCPUm
	}
	p.RemainderMi = p.NodeMemoryMi - p.FixedLimitMi
	p.PerPodLimitMi = worker.LimitMemoryMi

	// One graph writer and one worker is the smallest stack that crawls.
	if need := writer.LimitMemoryMi + worker.LimitMemoryMi; p.RemainderMi < need {
		over := need - p.RemainderMi
		return nil, inputErrorf("the stack does not fit in %dMi: the fixed components' limits take %dMi, "+
			"leaving %dMi, but one graph writer and one worker need %dMi (over by %dMi); %s",
			p.NodeMemoryMi, p.FixedLimitMi, p.RemainderMi, need, over, reduceHint(in, proxy, browser, over))
	}
	if maxWriters := int((p.RemainderMi - worker.LimitMemoryMi) / writer.LimitMemoryMi); in.GraphWriters > maxWriters {
		return nil, inputErrorf("graph-writers %d is more than the cap of %d: the remainder of %dMi holds at most %d "+
			"graph writers beside one worker; lower --graph-writers or free memory (%s)",
			in.GraphWriters, maxWriters, p.RemainderMi, maxWriters, reduceHint(in, proxy, browser, 0))
	}
	p.MaxWorkers = int((p.RemainderMi - int64(in.GraphWriters)*writer.LimitMemoryMi) / worker.LimitMemoryMi)
	// CPU requests decide what schedules: a worker KEDA asks for beyond
	// them would stay Pending, so they cap the workers too.
	cpuLeft := p.NodeCPUm - fixedCPUm - int64(in.GraphWriters)*writer.RequestCPUm
	if cpuLeft < worker.RequestCPUm {
		return nil, inputErrorf("the stack's CPU requests do not fit in %dm: the fixed components request %dm and %d graph writer(s) %dm, "+
			"leaving %dm, less than one worker's %dm; raise --node-cpu, or lower --worker-cpu-request or --graph-writer-cpu-request",
			p.NodeCPUm, fixedCPUm, in.GraphWriters, int64(in.GraphWriters)*writer.RequestCPUm, max(cpuLeft, 0), worker.RequestCPUm)
	}
	if worker.RequestCPUm > 0 {
		if byCPU := int(cpuLeft / worker.RequestCPUm); byCPU < p.MaxWorkers {
			p.MaxWorkersByMemory, p.MaxWorkers = p.MaxWorkers, byCPU
		}
	}
	p.MaxReplicas = p.MaxWorkers + in.GraphWriters
	p.KEDAMaxReplicaCount = p.MaxWorkers

	w := newComponent(Worker, p.MaxWorkers, worker)
	w.Scaled, w.Note = true, "at KEDA maxReplicaCount"
	gw := newComponent(GraphWriter, in.GraphWriters, writer)
	gw.Scaled = true
	p.Components = append(p.Components, w, gw)
	for _, c := range p.Components {
		p.Totals.RequestMemoryMi += c.TotalRequestMemoryMi
		p.Totals.LimitMemoryMi += c.TotalLimitMemoryMi
		p.Totals.RequestCPUm += c.TotalRequestCPUm
		p.Totals.LimitCPUm += c.TotalLimitCPUm
	}

	if p.MaxWorkers > in.Partitions {
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"max workers %d exceeds the frontier's %d partitions: at most %d workers get a partition and %d would sit idle; "+
				"raise --partitions to %d or keep the idle headroom",
			p.MaxWorkers, in.Partitions, in.Partitions, p.MaxWorkers-in.Partitions, p.MaxWorkers))
	}
	if p.MaxWorkersByMemory > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"CPU requests cap the workers at %d (the memory remainder holds %d): the node's %dm less %dm of other requests leaves room for %d at %dm each; "+
				"raise --node-cpu or lower --worker-cpu-request for more",
			p.MaxWorkers, p.MaxWorkersByMemory, p.NodeCPUm, p.NodeCPUm-cpuLeft, p.MaxWorkers, worker.RequestCPUm))
	}
	return p, nil
}

// reduceHint says what would make an over-budget stack fit.
func reduceHint(in Input, proxy, browser Resources, over int64) string {
	hint := "raise --node-memory"
	if over > 0 {
		hint = fmt.Sprintf("raise --node-memory by at least %dMi", over)
	}
	if in.Proxies > 1 {
		hint += fmt.Sprintf(", or reduce --proxies (each frees %dMi)", proxy.LimitMemoryMi)
	}
	if in.GridWorkers > 0 {
		hint += fmt.Sprintf(", or reduce --grid-workers (each frees %dMi)", browser.LimitMemoryMi)
	}
	return hint
}
