package budget

// Component names. Charts, the local provider and status output use these
// names to look their sizes up in a Plan.
const (
	Kafka                 = "kafka"
	Redis                 = "redis"
	GraphDB               = "graph-db"
	Prometheus            = "prometheus"
	KubeStateMetrics      = "kube-state-metrics"
	KEDAOperator          = "keda-operator"
	KEDAMetricsAPIServer  = "keda-metrics-apiserver"
	KEDAAdmissionWebhooks = "keda-admission-webhooks"
	API                   = "api"
	Simulator             = "olsim"
	Proxy                 = "proxy"
	Grafana               = "grafana"
	GridProxy             = "grid-proxy"
	Browser               = "browser"
	KindControlPlane      = "kind-control-plane"
	Worker                = "worker"
	GraphWriter           = "graph-writer"
)

// fixedComponent is a component whose replica count does not depend on the
// remainder.
type fixedComponent struct {
	name     string
	replicas int
	res      Resources
	reserved bool
	note     string
}

func res(reqMi, limMi, reqCPUm, limCPUm int64) Resources {
	return Resources{RequestMemoryMi: reqMi, LimitMemoryMi: limMi, RequestCPUm: reqCPUm, LimitCPUm: limCPUm}
}

// crawlctlFixed is what crawlctl's charts deploy besides proxies, the grid and
// the two scaled components, with the sizes the charts use.
func crawlctlFixed(in Input) []fixedComponent {
	c := []fixedComponent{
		{name: Kafka, replicas: 1, res: res(512, 1024, 250, 1000), note: "apache/kafka, one KRaft node, heap 512m"},
		{name: Redis, replicas: 1, res: res(64, 128, 50, 200), note: "dedupe keys and grid registry"},
		{name: GraphDB, replicas: 1, res: res(256, 512, 100, 500), note: "PostgreSQL graph store"},
		{name: Prometheus, replicas: 1, res: res(128, 256, 100, 500), note: "server, no operator"},
		{name: KubeStateMetrics, replicas: 1, res: res(32, 64, 10, 100)},
		{name: KEDAOperator, replicas: 1, res: res(96, 192, 50, 500), note: "official KEDA chart, values from this plan"},
		{name: KEDAMetricsAPIServer, replicas: 1, res: res(64, 128, 50, 500)},
		{name: KEDAAdmissionWebhooks, replicas: 1, res: res(32, 64, 10, 100)},
		{name: API, replicas: 1, res: res(32, 64, 50, 200), note: "control API and consumer-lag metrics"},
		{name: Simulator, replicas: 1, res: res(32, 64, 50, 500), note: "Open Library simulator (default target)"},
	}
	if in.Grafana {
		c = append(c, fixedComponent{name: Grafana, replicas: 1, res: res(128, 256, 50, 500), note: "--grafana"})
	}
	// Kind's own control plane (API server, etcd, controller manager,
	// scheduler, CoreDNS, kindnet, kube-proxy) lives inside the same node
	// container, which is capped at the node memory: it is not a crawlctl
	// chart, but the budget is only true if it keeps room for it. Its CPU
	// is what those pods request on a kind v0.33 node: API server 250m,
	// controller manager 200m, scheduler 100m, etcd 100m, two CoreDNS
	// 100m each, kindnet 100m.
	c = append(c, fixedComponent{name: KindControlPlane, replicas: 1, res: res(768, 768, 950, 1000), reserved: true,
		note: "kind control plane and system pods"})
	return c
}

// referenceFixed is the reference crawler's 8 GiB table
// (shared/REFERENCE.md). Only memory limits were published for most rows;
// requests are taken equal to limits and CPU figures are crawlctl's estimate.
func referenceFixed(Input) []fixedComponent {
	return []fixedComponent{
		{name: Kafka, replicas: 1, res: res(1024, 1024, 500, 1000), note: "Strimzi Kafka"},
		{name: GraphDB, replicas: 1, res: res(1024, 1024, 500, 1000), note: "Neo4j"},
		{name: Grafana, replicas: 1, res: res(1024, 1024, 100, 500)},
		{name: Redis, replicas: 1, res: res(128, 128, 50, 200)},
		{name: API, replicas: 1, res: res(64, 64, 50, 100)},
		{name: "lag-exporter", replicas: 1, res: res(64, 64, 20, 100)},
		{name: KubeStateMetrics, replicas: 1, res: res(64, 64, 20, 100)},
		{name: Prometheus, replicas: 1, res: res(256, 256, 100, 500), reserved: true, note: "operator install"},
		{name: "prometheus-operator", replicas: 1, res: res(64, 64, 50, 200), reserved: true},
		{name: "strimzi-cluster-operator", replicas: 1, res: res(384, 384, 100, 500), reserved: true},
		{name: "strimzi-entity-operator", replicas: 1, res: res(512, 512, 100, 500), reserved: true},
		{name: "keda", replicas: 1, res: res(384, 384, 100, 500), reserved: true},
	}
}

var profileFixed = map[Profile]func(Input) []fixedComponent{
	ProfileCrawlctl:  crawlctlFixed,
	ProfileReference: referenceFixed,
}

// gridProxySize is the WebSocket grid proxy's size; it only relays frames.
var gridProxySize = res(32, 64, 50, 500)
