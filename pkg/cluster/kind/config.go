// Package kind is the kind provider: a single-node Kind cluster sized to
// the budget. This file generates the cluster's configuration; preflight.go
// checks the Docker daemon against the budget before anything is created.
package kind

import (
	"fmt"

	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// NodeImage is the node image, pinned by digest: the one this kind
// release was built and tested with.
const NodeImage = defaults.Image

// Options shape the cluster.
type Options struct {
	Name string
	Plan *budget.Plan
	// HostMemoryMi is the memory the Docker daemon has (Docker Desktop's
	// VM size, or the host's); what is above the budget is reserved so the
	// node's allocatable memory is the budget.
	HostMemoryMi int64
	// Ports are the host ports mapped to the stack's NodePorts
	// (stack.DefaultPorts when zero).
	Ports stack.Ports
	// NodeImage overrides NodeImage.
	NodeImage string
	// CgroupV1 lets the kubelet run on a cgroup v1 host (failCgroupV1:
	// false; kubelet 1.35 and later refuse one otherwise).
	CgroupV1 bool
}

// Config is the kind cluster configuration for o.
func Config(o Options) (*v1alpha4.Cluster, error) {
	if o.Plan == nil {
		return nil, fmt.Errorf("kind config: no budget plan")
	}
	if o.HostMemoryMi < o.Plan.NodeMemoryMi {
		return nil, fmt.Errorf("the Docker daemon has %dMi of memory, less than the %dMi budget: "+
			"give Docker more memory (Docker Desktop: Settings → Resources) or lower --node-memory", o.HostMemoryMi, o.Plan.NodeMemoryMi)
	}
	image := o.NodeImage
	if image == "" {
		image = NodeImage
	}
	ports := o.Ports
	if ports == (stack.Ports{}) {
		ports = stack.DefaultPorts
	}
	reserved := o.HostMemoryMi - o.Plan.NodeMemoryMi
	kubelet := fmt.Sprintf(`kind: KubeletConfiguration
apiVersion: kubelet.config.k8s.io/v1beta1
systemReserved:
  memory: %dMi
evictionHard:
%s`, reserved, evictionYAML())
	if o.CgroupV1 {
		kubelet += "failCgroupV1: false\n"
	}
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     o.Name,
		Nodes: []v1alpha4.Node{{
			Role:  v1alpha4.ControlPlaneRole,
			Image: image,
			ExtraPortMappings: []v1alpha4.PortMapping{
				{ContainerPort: stack.NodePorts.API, HostPort: ports.API, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
				{ContainerPort: stack.NodePorts.Prometheus, HostPort: ports.Prometheus, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
				{ContainerPort: stack.NodePorts.Grid, HostPort: ports.Grid, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
			},
		}},
		KubeadmConfigPatches: []string{kubelet},
	}
	return c, nil
}

// EvictionMemoryMi is the kubelet's hard eviction threshold: the node's
// allocatable memory is the budget less this.
const EvictionMemoryMi = 100

// evictionYAML keeps the kubelet evicting pods before the node container's
// memory limit kills processes at random.
func evictionYAML() string {
	return fmt.Sprintf("  memory.available: %dMi\n  nodefs.available: 5%%\n  imagefs.available: 5%%\n", EvictionMemoryMi)
}

// Marshal is the YAML kind reads (what `up --dry-run` writes).
func Marshal(c *v1alpha4.Cluster) ([]byte, error) { return yaml.Marshal(c) }
