package stack

import "fmt"

// Ports are a cluster stack's ports: the host ports kind maps, the local
// ends of the port-forwards to another cluster, and (NodePorts) the
// Services' node ports the chart is given.
type Ports struct {
	API        int32 `json:"api"`
	Prometheus int32 `json:"prometheus"`
	Grid       int32 `json:"grid"`
}

// DefaultPorts: the control API on 8088, Prometheus on 9090, the grid on
// 8080 (as the seed's `ws://localhost:8080`), all on 127.0.0.1.
var DefaultPorts = Ports{API: 8088, Prometheus: 9090, Grid: 8080}

// NodePorts are the Services' node ports the host ports map to.
var NodePorts = Ports{API: 30088, Prometheus: 30090, Grid: 30080}

// ServicePorts are the ports of the chart's Services (api, prometheus,
// grid) inside the cluster.
var ServicePorts = Ports{API: 8080, Prometheus: 9090, Grid: 8080}

// Endpoints are the stack's addresses on this host through the ports
// (DefaultPorts when p is zero).
func (p Ports) Endpoints() Endpoints {
	if p == (Ports{}) {
		p = DefaultPorts
	}
	return Endpoints{API: fmt.Sprintf("http://127.0.0.1:%d", p.API), Prometheus: fmt.Sprintf("http://127.0.0.1:%d", p.Prometheus),
		Grid: fmt.Sprintf("ws://127.0.0.1:%d", p.Grid)}
}

// PortForwards are the kubectl commands that make a cluster's stack in
// namespace answer on DefaultPorts, as kind's does.
func PortForwards(namespace string) string {
	l, s := DefaultPorts, ServicePorts
	return fmt.Sprintf("kubectl -n %[1]s port-forward svc/api %[2]d:%[3]d & kubectl -n %[1]s port-forward svc/prometheus %[4]d:%[5]d & "+
		"kubectl -n %[1]s port-forward svc/grid %[6]d:%[7]d", namespace, l.API, s.API, l.Prometheus, s.Prometheus, l.Grid, s.Grid)
}
