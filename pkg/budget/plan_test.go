package budget

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func with(mod func(*Input)) Input {
	in := DefaultInput()
	mod(&in)
	return in
}

func reference(mod func(*Input)) Input {
	return with(func(in *Input) {
		in.Profile = ProfileReference
		mod(in)
	})
}

func TestComputeFits(t *testing.T) {
	tests := []struct {
		name          string
		in            Input
		remainderMi   int64
		maxReplicas   int
		maxWorkers    int
		wantComponent string
		wantWarning   string
	}{
		// The reference 8 GiB table: 8192 - 4224 - 320 - 1600 = 2048.
		{name: "reference 3 proxies", in: reference(func(*Input) {}), remainderMi: 2048, maxReplicas: 32, maxWorkers: 31},
		{name: "reference 4 proxies", in: reference(func(in *Input) { in.Proxies = 4 }), remainderMi: 1664, maxReplicas: 26, maxWorkers: 25},
		{name: "reference 1 proxy", in: reference(func(in *Input) { in.Proxies = 1 }), remainderMi: 2816, maxReplicas: 44, maxWorkers: 43, wantWarning: "exceeds the frontier's 32 partitions"},
		{name: "reference 6 proxies", in: reference(func(in *Input) { in.Proxies = 6 }), remainderMi: 896, maxReplicas: 14, maxWorkers: 13},
		{name: "reference 2 graph writers", in: reference(func(in *Input) { in.GraphWriters = 2 }), remainderMi: 2048, maxReplicas: 32, maxWorkers: 30},
		{name: "reference worker limit 128Mi", in: reference(func(in *Input) { in.Sizes.Worker.MemoryLimit = "128Mi" }), remainderMi: 2048, maxReplicas: 16, maxWorkers: 15},
		{name: "reference proxy limit 512Mi", in: reference(func(in *Input) { in.Sizes.Proxy.MemoryLimit = "0.5Gi" }), remainderMi: 1664, maxReplicas: 26, maxWorkers: 25},
		{name: "reference 16Gi node", in: reference(func(in *Input) { in.NodeMemory = "16Gi"; in.NodeCPU = "16"; in.Partitions = 160 }), remainderMi: 10240, maxReplicas: 160, maxWorkers: 159},
		// 8G is decimal: 8e9 bytes = 7629.39Mi, rounded down for capacity.
		{name: "reference decimal 8G node", in: reference(func(in *Input) { in.NodeMemory = "8G" }), remainderMi: 1485, maxReplicas: 23, maxWorkers: 22},
		// crawlctl: 4416Mi fixed with 3 proxies (kind control plane reserved included).
		// CPU: 4000m less 1820m of fixed requests (kind's control plane
		// 950m) and the writer's 50m leaves 2130m, 42 workers at 50m,
		// fewer than the 58 the memory holds.
		{name: "crawlctl default", in: DefaultInput(), remainderMi: 3776, maxReplicas: 43, maxWorkers: 42, wantWarning: "CPU requests cap the workers at 42 (the memory remainder holds 58)"},
		{name: "crawlctl default partitions", in: DefaultInput(), remainderMi: 3776, maxReplicas: 43, maxWorkers: 42, wantWarning: "42 exceeds the frontier's 32 partitions"},
		{name: "crawlctl 4 proxies", in: with(func(in *Input) { in.Proxies = 4 }), remainderMi: 3392, maxReplicas: 42, maxWorkers: 41},
		{name: "crawlctl 4 proxies, 8 CPUs", in: with(func(in *Input) { in.Proxies = 4; in.NodeCPU = "8" }), remainderMi: 3392, maxReplicas: 53, maxWorkers: 52},
		{name: "crawlctl grafana", in: with(func(in *Input) { in.Grafana = true }), remainderMi: 3520, maxReplicas: 42, maxWorkers: 41, wantComponent: Grafana},
		{name: "crawlctl 2 grid workers", in: with(func(in *Input) { in.GridWorkers = 2 }), remainderMi: 640, maxReplicas: 10, maxWorkers: 9, wantComponent: Browser},
		{name: "crawlctl 64 partitions, 8 CPUs", in: with(func(in *Input) { in.Partitions = 64; in.NodeCPU = "8" }), remainderMi: 3776, maxReplicas: 59, maxWorkers: 58},
		{name: "crawlctl 2 CPUs", in: with(func(in *Input) { in.NodeCPU = "2" }), remainderMi: 3776, maxReplicas: 3, maxWorkers: 2, wantWarning: "CPU requests cap the workers at 2 (the memory remainder holds 58): the node's 2000m less 1870m"},
		{name: "crawlctl 2 CPUs, 10m workers", in: with(func(in *Input) { in.NodeCPU = "2"; in.Sizes.Worker.CPURequest = "10m" }), remainderMi: 3776, maxReplicas: 14, maxWorkers: 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compute(tt.in)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			if p.RemainderMi != tt.remainderMi || p.MaxReplicas != tt.maxReplicas || p.MaxWorkers != tt.maxWorkers {
				t.Fatalf("remainder %d, maxReplicas %d, maxWorkers %d; want %d, %d, %d",
					p.RemainderMi, p.MaxReplicas, p.MaxWorkers, tt.remainderMi, tt.maxReplicas, tt.maxWorkers)
			}
			if p.KEDAMaxReplicaCount != p.MaxWorkers {
				t.Errorf("KEDA maxReplicaCount %d != max workers %d", p.KEDAMaxReplicaCount, p.MaxWorkers)
			}
			checkInvariants(t, p)
			if tt.wantComponent != "" {
				if _, ok := p.Component(tt.wantComponent); !ok {
					t.Errorf("plan has no %s row", tt.wantComponent)
				}
			}
			if tt.wantWarning != "" && !strings.Contains(strings.Join(p.Warnings, "\n"), tt.wantWarning) {
				t.Errorf("warnings %q lack %q", p.Warnings, tt.wantWarning)
			}
			if tt.wantWarning == "" && len(p.Warnings) > 0 && p.Profile == ProfileReference {
				t.Errorf("unexpected warnings %q", p.Warnings)
			}
		})
	}
}

// checkInvariants asserts what must hold for every plan.
func checkInvariants(t *testing.T, p *Plan) {
	t.Helper()
	var sum Totals
	var fixed int64
	for _, c := range p.Components {
		if c.TotalLimitMemoryMi != int64(c.Replicas)*c.LimitMemoryMi || c.TotalRequestCPUm != int64(c.Replicas)*c.RequestCPUm {
			t.Errorf("%s: totals are not replicas x per-pod", c.Name)
		}
		if c.RequestMemoryMi > c.LimitMemoryMi {
			t.Errorf("%s: request above limit", c.Name)
		}
		sum.RequestMemoryMi += c.TotalRequestMemoryMi
		sum.LimitMemoryMi += c.TotalLimitMemoryMi
		sum.RequestCPUm += c.TotalRequestCPUm
		sum.LimitCPUm += c.TotalLimitCPUm
		if !c.Scaled {
			fixed += c.TotalLimitMemoryMi
		}
	}
	if sum != p.Totals {
		t.Errorf("totals %+v != sum of rows %+v", p.Totals, sum)
	}
	if fixed != p.FixedLimitMi || p.NodeMemoryMi-fixed != p.RemainderMi {
		t.Errorf("fixed %d / remainder %d do not match rows (%d)", p.FixedLimitMi, p.RemainderMi, fixed)
	}
	if p.Totals.LimitMemoryMi > p.NodeMemoryMi {
		t.Errorf("limits %dMi exceed the node's %dMi", p.Totals.LimitMemoryMi, p.NodeMemoryMi)
	}
	w, _ := p.Component(Worker)
	if p.Totals.RequestCPUm > p.NodeCPUm {
		t.Errorf("CPU requests %dm exceed the node's %dm: the last workers would stay Pending", p.Totals.RequestCPUm, p.NodeCPUm)
	}
	// The cap is tight: one more worker breaks the memory or, when CPU
	// caps them, the CPU requests.
	cpuBound := p.MaxWorkersByMemory > 0
	if !cpuBound && p.Totals.LimitMemoryMi+w.LimitMemoryMi <= p.NodeMemoryMi {
		t.Errorf("one more worker (%dMi) would still fit in %dMi: cap too low", w.LimitMemoryMi, p.NodeMemoryMi-p.Totals.LimitMemoryMi)
	}
	if cpuBound && (p.Totals.RequestCPUm+w.RequestCPUm <= p.NodeCPUm || p.MaxWorkersByMemory <= p.MaxWorkers) {
		t.Errorf("one more worker (%dm) would still fit in %dm of CPU, or memory (%d) is the tighter cap: CPU cap wrong", w.RequestCPUm, p.NodeCPUm-p.Totals.RequestCPUm, p.MaxWorkersByMemory)
	}
	if w.Replicas != p.MaxWorkers {
		t.Errorf("worker row has %d replicas, want max workers %d", w.Replicas, p.MaxWorkers)
	}
	if gw, _ := p.Component(GraphWriter); gw.Replicas != p.GraphWriters {
		t.Errorf("graph-writer row has %d replicas, want %d", gw.Replicas, p.GraphWriters)
	}
	if pr, _ := p.Component(Proxy); pr.Replicas != p.Proxies {
		t.Errorf("proxy row has %d replicas, want %d", pr.Replicas, p.Proxies)
	}
}

func TestComputeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"zero proxies", with(func(in *Input) { in.Proxies = 0 }), "proxies must be at least 1 (got 0)"},
		{"negative proxies", with(func(in *Input) { in.Proxies = -2 }), "proxies must be at least 1 (got -2)"},
		{"zero graph writers", with(func(in *Input) { in.GraphWriters = 0 }), "graph-writers must be at least 1"},
		{"negative grid workers", with(func(in *Input) { in.GridWorkers = -1 }), "grid-workers must be zero or more"},
		{"zero partitions", with(func(in *Input) { in.Partitions = 0 }), "partitions must be at least 1"},
		{"unknown profile", with(func(in *Input) { in.Profile = "fast" }), `profile "fast" is unknown`},
		{"node memory GB", with(func(in *Input) { in.NodeMemory = "8GB" }), `node-memory "8GB" is not a quantity`},
		{"node memory word", with(func(in *Input) { in.NodeMemory = "lots" }), `node-memory "lots" is not a quantity`},
		{"node memory empty", with(func(in *Input) { in.NodeMemory = "" }), `node-memory "" is not a quantity`},
		{"node memory tiny", with(func(in *Input) { in.NodeMemory = "100Ki" }), `node-memory "100Ki" is less than 1Mi`},
		{"node cpu negative", with(func(in *Input) { in.NodeCPU = "-1" }), `node-cpu "-1" is negative`},
		{"worker limit unparseable", with(func(in *Input) { in.Sizes.Worker.MemoryLimit = "64MB" }), `sizes.worker.memory-limit "64MB" is not a quantity`},
		{"proxy cpu unparseable", with(func(in *Input) { in.Sizes.Proxy.CPULimit = "fast" }), `sizes.proxy.cpu-limit "fast" is not a quantity`},
		{"zero worker limit", with(func(in *Input) { in.Sizes.Worker.MemoryLimit = "0" }), "sizes.worker.memory-limit is zero"},
		{"request above limit", with(func(in *Input) { in.Sizes.GraphWriter.MemoryRequest = "128Mi" }), "sizes.graph-writer: memory request 128Mi is above its limit 64Mi"},
		{"cpu request above limit", with(func(in *Input) { in.Sizes.Browser.CPURequest = "3" }), "sizes.browser: CPU request 3 is above its limit 2"},
		{"does not fit", reference(func(in *Input) { in.NodeMemory = "4Gi" }), "does not fit in 4096Mi: the fixed components' limits take 6144Mi, leaving -2048Mi, but one graph writer and one worker need 128Mi (over by 2176Mi); raise --node-memory by at least 2176Mi, or reduce --proxies (each frees 384Mi)"},
		{"does not fit with grid", with(func(in *Input) { in.GridWorkers = 3 }), "reduce --grid-workers (each frees 1536Mi)"},
		{"too many graph writers", reference(func(in *Input) { in.GraphWriters = 40 }), "graph-writers 40 is more than the cap of 31"},
		{"CPU does not fit", with(func(in *Input) { in.NodeCPU = "1500m" }), "the stack's CPU requests do not fit in 1500m: the fixed components request 1820m and 1 graph writer(s) 50m, leaving 0m, less than one worker's 50m; raise --node-cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compute(tt.in)
			if err == nil {
				t.Fatalf("Compute accepted bad input: remainder %d", p.RemainderMi)
			}
			if !IsInputError(err) {
				t.Errorf("error %v is not an InputError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n  %v\nlacks\n  %s", err, tt.want)
			}
		})
	}
}

func TestComparisonWithReference(t *testing.T) {
	p, err := Compute(DefaultInput())
	if err != nil {
		t.Fatal(err)
	}
	c := p.Comparison
	if c == nil || !c.Fits || c.RemainderMi != 2048 || c.MaxReplicas != 32 {
		t.Fatalf("comparison %+v, want the reference's 2048Mi / 32", c)
	}
	if c.DeltaRemainderMi != 3776-2048 || c.DeltaMaxReplicas != 43-32 {
		t.Errorf("deltas %+d / %+d", c.DeltaRemainderMi, c.DeltaMaxReplicas)
	}
	// A crawlctl stack that fits where the reference does not.
	p, err = Compute(with(func(in *Input) { in.NodeMemory = "6Gi" }))
	if err != nil {
		t.Fatal(err)
	}
	if p.Comparison.Fits {
		t.Errorf("reference should not fit in 6Gi: %+v", p.Comparison)
	}
	ref, err := Compute(reference(func(*Input) {}))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Comparison != nil {
		t.Errorf("reference plan compares with itself: %+v", ref.Comparison)
	}
}

// TestTableTotalsEqualRows parses the printed table back and checks that its
// TOTAL row is the sum of the component rows, for both profiles.
func TestTableTotalsEqualRows(t *testing.T) {
	for _, in := range []Input{DefaultInput(), reference(func(*Input) {}), with(func(in *Input) { in.GridWorkers = 1; in.Grafana = true })} {
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := p.WriteTable(&buf); err != nil {
			t.Fatal(err)
		}
		var sums [4]int64
		var total []int64
		rows := 0
		inTable := false
		for _, line := range strings.Split(buf.String(), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && f[0] == "COMPONENT":
				inTable = true
			case !inTable || len(f) == 0:
				inTable = inTable && len(f) > 0
			case f[0] == "TOTAL":
				total = quantities(t, f[1:])
				inTable = false
			default:
				vals := quantities(t, f[len(f)-4:])
				for i := range sums {
					sums[i] += vals[i]
				}
				rows++
			}
		}
		if rows != len(p.Components) {
			t.Fatalf("%s: parsed %d rows, plan has %d:\n%s", in.Profile, rows, len(p.Components), buf.String())
		}
		if len(total) != 4 || [4]int64(total) != sums {
			t.Errorf("%s: TOTAL %v != sum of rows %v:\n%s", in.Profile, total, sums, buf.String())
		}
		if !strings.Contains(buf.String(), "remainder for workers + graph writers: "+strconv.FormatInt(p.RemainderMi, 10)+"Mi") {
			t.Errorf("table lacks the remainder line:\n%s", buf.String())
		}
	}
}

func quantities(t *testing.T, fields []string) []int64 {
	t.Helper()
	var out []int64
	for _, f := range fields {
		v, err := strconv.ParseInt(strings.TrimRight(f, "Mim"), 10, 64)
		if err != nil {
			t.Fatalf("field %q: %v", f, err)
		}
		out = append(out, v)
	}
	return out
}
