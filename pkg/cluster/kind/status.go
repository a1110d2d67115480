package kind

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/moby/moby/client"

	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// ClusterStatus is the stack's kind cluster with no stack installed in it
// (`up --cluster-only`): its node container and its nodes.
type ClusterStatus struct {
	Name       string `json:"name"`
	Container  string `json:"container"`
	Kubeconfig string `json:"kubeconfig"`
	// MemoryLimitMi is the node container's memory limit (Docker's).
	MemoryLimitMi int64       `json:"memoryLimitMi"`
	Nodes         []kube.Node `json:"nodes"`
	Installed     bool        `json:"installed"`
}

// WriteTable prints the node container and the nodes.
func (s *ClusterStatus) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "kind cluster %q: node container %s capped at %dMi; the stack is not installed (crawlctl up --provider kind installs it)\n\n",
		s.Name, s.Container, s.MemoryLimitMi)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tALLOCATABLE MEMORY\tCAPACITY MEMORY")
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "%s\t%v\t%dMi\t%dMi\n", n.Name, n.Ready, n.AllocatableMi, n.CapacityMi)
	}
	return tw.Flush()
}

// clusterStatus reads the node container from Docker and the nodes from
// the cluster.
func (p *Provider) clusterStatus(ctx context.Context, kp *kube.Provider, d *client.Client) (*ClusterStatus, error) {
	dir, err := p.dir()
	if err != nil {
		return nil, err
	}
	st := &ClusterStatus{Name: p.name, Container: NodeContainer(p.name), Kubeconfig: dir + "/kubeconfig"}
	c, err := d.ContainerInspect(ctx, st.Container, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting node container %s: %w", st.Container, err)
	}
	if hc := c.Container.HostConfig; hc != nil {
		st.MemoryLimitMi = hc.Memory >> 20
	}
	if st.Nodes, err = kp.Nodes(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

var _ stack.Report = (*ClusterStatus)(nil)
