package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// dockerCPUs is how many CPUs the Docker daemon of this machine reports
// (scripts/test.sh starts one); without one the test skips, or fails in CI.
func dockerCPUs(t *testing.T) int {
	t.Helper()
	d, err := kind.NewDocker()
	if err == nil {
		defer d.Close()
		var info client.SystemInfoResult
		if info, err = d.Info(context.Background(), client.InfoOptions{}); err == nil {
			return info.Info.NCPU
		}
	}
	testenv.Missing(t, "no Docker daemon answers (scripts/test.sh starts one): "+err.Error())
	return 0
}

func planFor(t *testing.T, nodeCPU int) *budget.Plan {
	t.Helper()
	in := budget.DefaultInput()
	in.NodeCPU = strconv.Itoa(nodeCPU)
	p, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChooseAuto: --provider auto against the real Docker daemon and real
// state directories. A stack that is up keeps its provider; else kind when
// the daemon has room for the node, local with the reason (naming the flag)
// when it has not or none answers.
func TestChooseAuto(t *testing.T) {
	cpus := dockerCPUs(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	dir, err := stack.Dir("recorded")
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.WriteRecord(dir, stack.Record{Provider: stack.Kube, Namespace: "crawl", Release: "crawl", Server: "https://10.0.0.1:6443"}); err != nil {
		t.Fatal(err)
	}
	// A local stack whose supervisor died left its state, and is not up
	// (TestUpSeedStatusDown covers one that is).
	died, err := stack.Dir("died")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(died, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(died, "state.json"), []byte(`{"pid": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, stack, provider string
		nodeCPU               int
		noDocker              bool
		want, why             string
	}{
		{"explicit", "fresh", stack.Local, cpus, false, stack.Local, "asked for with --provider local"},
		{"room for the node", "fresh", stack.Auto, cpus, false, stack.Kind, "has room for the node"},
		{"empty means auto", "fresh", "", cpus, false, stack.Kind, "has room for the node"},
		{"too few CPUs", "fresh", stack.Auto, cpus + 2, false, stack.Local, "size the node to it with --node-cpu " + strconv.Itoa(cpus)},
		{"no daemon", "fresh", stack.Auto, cpus, true, stack.Local, "no Docker daemon answers at unix:///nonexistent/docker.sock"},
		{"a local stack that died is not up", "died", stack.Auto, cpus, false, stack.Kind, "has room for the node"},
		{"explicit kind", "fresh", stack.Kind, cpus + 2, false, stack.Kind, "asked for with --provider kind"},
		{"recorded stack keeps its provider", "recorded", stack.Auto, cpus, false, stack.Kube, "installed with it (in the cluster at https://10.0.0.1:6443)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.noDocker {
				t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
			}
			got, why, err := Choose(context.Background(), c.stack, c.provider, planFor(t, c.nodeCPU))
			if err != nil || got != c.want || !strings.Contains(why, c.why) {
				t.Errorf("Choose(%q) = %s, %q, %v; want %s, %q", c.provider, got, why, err, c.want, c.why)
			}
		})
	}
	if _, _, err := Choose(context.Background(), "fresh", "docker", planFor(t, cpus)); !stack.IsUsage(err) {
		t.Errorf("an unknown provider: %v, want a usage error", err)
	}
}
