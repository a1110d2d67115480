package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// claim records the cluster just created as this stack's.
func claim(ctx context.Context, d Inspector, dir, cluster string) error {
	id, err := nodeID(ctx, d, cluster)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(ownership{Cluster: cluster, NodeID: id})
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
