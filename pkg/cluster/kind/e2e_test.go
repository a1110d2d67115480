package kind_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
)

// TestRealKindCluster drives the real binary against the real Docker
// daemon with the node image scripts/kind-offline.sh builds here
// (scripts/test.sh runs it and sets CRAWLCTL_NODE_IMAGE): up creates the
// cluster, node Ready and CoreDNS ready, the node container capped at the
// budget and the node's allocatable memory what the kubelet's reservation
// promises; a second up reuses it; another stack of the same name neither
// reuses nor deletes it; status reads it; down deletes it and leaves no
// container or volume of its own.
func TestRealKindCluster(t *testing.T) {
	image := testenv.RequireEnv(t, "scripts/kind-offline.sh builds the node image and scripts/test.sh sets it",
		"CRAWLCTL_NODE_IMAGE")["CRAWLCTL_NODE_IMAGE"]
	const name = "kind-e2e"
	home := t.TempDir()
	bin := testenv.Crawlctl(t)
	runIn := func(home string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+home, "XDG_CONFIG_HOME="+home, "CRAWLCTL_NAME="+name, "CRAWLCTL_NODE_IMAGE="+image)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	run := func(args ...string) (string, string, error) { return runIn(home, args...) }
	d, err := kind.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	volumes := func() int {
		v, err := d.VolumeList(ctx, client.VolumeListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(v.Items)
	}
	// An interrupted run's cluster is not this run's stack's: kind deletes it.
	kp := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	kp.Delete(name, "")
	t.Cleanup(func() { run("down", "--provider", "kind") })
	before := volumes()
	network := func() bool {
		_, err := d.NetworkInspect(ctx, kind.Network(), client.NetworkInspectOptions{})
		return err == nil
	}
	hadNetwork := network() // kind's network, which the first create makes

	in := budget.DefaultInput()
	in.NodeCPU = "2"
	plan, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run("up", "--provider", "kind", "--node-cpu", "2", "--cluster-only", "-o", "json")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, errOut)
	}
	for _, step := range []string{"✓ preflight", "✓ create: kind cluster " + name + " (", "✓ cap node", "✓ wait ready: node Ready, CoreDNS ready", "✓ record"} {
		if !strings.Contains(errOut, step) {
			t.Errorf("up printed no %q:\n%s", step, errOut)
		}
	}
	var st kind.ClusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st.MemoryLimitMi != plan.NodeMemoryMi || len(st.Nodes) != 1 || !st.Nodes[0].Ready {
		t.Fatalf("cluster %+v, want one Ready node in a container capped at %dMi", st, plan.NodeMemoryMi)
	}
	if want := plan.NodeMemoryMi - kind.EvictionMemoryMi; st.Nodes[0].AllocatableMi != want {
		t.Errorf("the node can allocate %dMi, the reservation promises %dMi (the budget less the eviction threshold)", st.Nodes[0].AllocatableMi, want)
	}
	c, err := d.ContainerInspect(ctx, kind.NodeContainer(name), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := c.Container.HostConfig; hc.Memory != plan.NodeMemoryMi<<20 || hc.MemorySwap != hc.Memory {
		t.Errorf("docker inspect: memory %d, memory+swap %d, want both %d", hc.Memory, hc.MemorySwap, plan.NodeMemoryMi<<20)
	}

	if _, errOut, err := run("up", "--provider", "kind", "--node-cpu", "2", "--cluster-only"); err != nil || !strings.Contains(errOut, "exists, created by this stack: reusing it") {
		t.Errorf("a second up: %v\n%s", err, errOut)
	}
	// Another stack of the same name (another state dir) neither reuses
	// nor deletes the cluster it did not create.
	stranger := t.TempDir()
	for _, args := range [][]string{{"up", "--provider", "kind", "--node-cpu", "2", "--cluster-only"}, {"down", "--provider", "kind"}} {
		_, errOut, err := runIn(stranger, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(errOut, "this stack has no record of creating it") {
			t.Errorf("%s by another stack of the same name: %v\n%s", args[0], err, errOut)
		}
	}
	if _, err := d.ContainerInspect(ctx, kind.NodeContainer(name), client.ContainerInspectOptions{}); err != nil {
		t.Fatalf("the cluster is gone after another stack's down: %v", err)
	}
	out, errOut, err = run("status", "-o", "json")
	var again kind.ClusterStatus
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || again.Name != name || !again.Nodes[0].Ready {
		t.Errorf("status: %v %s\n%s", err, out, errOut)
	}

	if _, errOut, err := run("down", "--provider", "kind"); err != nil || !strings.Contains(errOut, "is deleted") {
		t.Fatalf("down: %v\n%s", err, errOut)
	}
	left, err := d.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "io.x-k8s.kind.cluster="+name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 0 || volumes() != before {
		t.Errorf("down left %d containers and %d volumes (before: %d)", len(left.Items), volumes(), before)
	}
	if !hadNetwork && network() {
		t.Errorf("down left Docker network %s, which this stack's create made", kind.Network())
	}
	t.Logf("Docker network %s before up: %v, after down: %v", kind.Network(), hadNetwork, network())
	if _, _, err := run("status"); err == nil {
		t.Error("status after down found a stack")
	}
}
