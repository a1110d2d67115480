package kind

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

// ownerFile, in the provider's dir, names the node container of the kind
// cluster this stack created. A cluster of the stack's name whose node is
// another container (someone else's, or made again by hand) is never
// reused, capped or deleted.
const ownerFile = "cluster.json"

type ownership struct {
	Cluster string `json:"cluster"`
	NodeID  string `json:"nodeContainerID"`
	// Network is kind's Docker network when this stack's create made it
	// (it did not exist before): down removes it once nothing uses it.
	Network string `json:"createdNetwork,omitempty"`
}

// Networks is the part of the Docker API that reads and removes a
// network (the moby client has it).
type Networks interface {
	NetworkInspect(ctx context.Context, id string, o client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkRemove(ctx context.Context, id string, o client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
}

// Network is the Docker network kind puts its nodes on (kind's own
// KIND_EXPERIMENTAL_DOCKER_NETWORK, else "kind").
func Network() string { return cmp.Or(os.Getenv("KIND_EXPERIMENTAL_DOCKER_NETWORK"), "kind") }

// networkExists says whether Docker has the network name.
func networkExists(ctx context.Context, d Networks, name string) bool {
	_, err := d.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	return err == nil
}

// releaseNetwork removes the network this stack's create made, unless a
// container (another kind cluster's node) is still on it. It says what
// it did.
func releaseNetwork(ctx context.Context, d Networks, name string) (string, error) {
	n, err := d.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspecting Docker network %s: %w", name, err)
	}
	if k := len(n.Network.Containers); k > 0 {
		return fmt.Sprintf("Docker network %s kept: %d other container(s) on it", name, k), nil
	}
	if _, err := d.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		// A cluster created on it since the inspect: it stays, and the
		// cluster's own down is done.
		return fmt.Sprintf("Docker network %s kept: %v", name, err), nil
	}
	return fmt.Sprintf("Docker network %s removed (this stack's create made it)", name), nil
}

// owned reads the ownership record in dir (zero if there is none).
func owned(dir string) ownership {
	var o ownership
	if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err == nil {
		json.Unmarshal(b, &o)
	}
	return o
}

// Inspector is the part of the Docker API that reads a container (the
// moby client has it).
type Inspector interface {
	ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

func nodeID(ctx context.Context, d Inspector, cluster string) (string, error) {
	c, err := d.ContainerInspect(ctx, NodeContainer(cluster), client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspecting node container %s: %w", NodeContainer(cluster), err)
	}
	return c.Container.ID, nil
}

// claim records the cluster just created as this stack's, and network
// when its create made it (empty: it was there before).
func claim(ctx context.Context, d Inspector, dir, cluster, network string) error {
	id, err := nodeID(ctx, d, cluster)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(ownership{Cluster: cluster, NodeID: id, Network: network})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), append(b, '\n'), 0o644)
}

// checkOwned refuses a kind cluster that exists under the stack's name but
// is not the one the stack created.
func checkOwned(ctx context.Context, d Inspector, dir, cluster string) error {
	id, err := nodeID(ctx, d, cluster)
	if err != nil {
		return err
	}
	var o ownership
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err == nil {
		err = json.Unmarshal(b, &o)
	}
	if err == nil && o.Cluster == cluster && o.NodeID == id {
		return nil
	}
	why := "this stack has no record of creating it"
	if !errors.Is(err, os.ErrNotExist) {
		why = fmt.Sprintf("its node container (%.12s) is not the one this stack created (%.12s)", id, o.NodeID)
	}
	return stack.Usagef("a kind cluster named %q exists, and %s: crawlctl leaves it alone. "+
		"Delete it yourself (`kind delete cluster --name %s`) if it is not needed, or use another stack name (--name)", cluster, why, cluster)
}
