//go:build !crawlctl_runtime

package main

// The providers that deploy with the Helm SDK (kind, kube). They are left
// out of the runtime build (-tags crawlctl_runtime), the binary of the
// stack's images: linking the Helm SDK and client-go costs every process
// about 4 MiB of its own memory at start and a working set that, in a
// worker pod's 64Mi cgroup, thrashes (docs/benchmarks.md).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/cluster/kube"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

// addKEDAFlags adds up's flags for installing KEDA.
func addKEDAFlags(f *pflag.FlagSet, ko *kubeFlags) {
	f.BoolVar(&ko.installKEDA, "install-keda", false, "install KEDA from its official chart when the cluster has none (default: true with --provider kind, false with kube)")
	f.StringVar(&ko.kedaRepo, "keda-repo", deploy.KEDARepo, "with --install-keda: KEDA's chart repository")
	f.StringVar(&ko.kedaVersion, "keda-version", deploy.KEDAVersion, "with --install-keda: KEDA's chart version")
}

func (ko kubeFlags) keda() deploy.KEDAOptions {
	return deploy.KEDAOptions{RepoURL: ko.kedaRepo, Version: ko.kedaVersion}
}

// renderManifests writes the stack's rendered chart (a client-only Helm
// dry run) into dir/manifests.yaml.
func renderManifests(a *app, dir string, plan *budget.Plan, ko kubeFlags) (string, error) {
	m, err := deploy.Render(deploy.Options{Plan: plan, Release: a.cfg.Name, Namespace: ko.namespace,
		Image: ko.image, BrowserImage: ko.browserImage, Target: ko.target})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, "manifests.yaml")
	return path, os.WriteFile(path, []byte(m), 0o644)
}

func (a *app) kubeProvider(ko kubeFlags) *kube.Provider {
	return kube.NewProvider(a.cfg.Name, kube.WithKubeconfig(ko.kubeconfig, ko.context), kube.WithNamespace(ko.namespace),
		kube.WithProgress(a.progress), kube.WithLogger(a.log))
}

// sizeFromCluster sets the budget's node size to what the cluster's
// schedulable nodes can allocate.
func sizeFromCluster(ctx context.Context, a *app, ko kubeFlags) error {
	c, err := a.kubeProvider(ko).Allocatable(ctx)
	if err != nil {
		return err
	}
	a.cfg.Input.NodeMemory, a.cfg.Input.NodeCPU = fmt.Sprintf("%dMi", c.MemoryMi), fmt.Sprintf("%dm", c.CPUm)
	a.progress("sizing from the cluster: %d schedulable nodes with %dMi and %dm allocatable", c.Nodes, c.MemoryMi, c.CPUm)
	return nil
}

// upKube installs or upgrades the stack in the kubeconfig's cluster.
func upKube(ctx context.Context, a *app, plan *budget.Plan, ko kubeFlags, timeout time.Duration) error {
	api, prom, grid := kind.DefaultPorts.Endpoints()
	return install(ctx, a, a.kubeProvider(ko), plan, kube.UpOptions{Image: ko.image, BrowserImage: ko.browserImage,
		Target: ko.target, Wait: ko.wait, Timeout: timeout, InstallKEDA: ko.installKEDA, KEDA: ko.keda()}, func(r *cluster.KubeRecord) {
		r.Endpoints = cluster.Endpoints{API: api, Prometheus: prom, Grid: grid}
		r.PortForward = true
	})
}

// install installs or upgrades the stack with p and records where (after
// mark adjusts the record), for status, seed, collect and down; the record
// is written before installing, so a failed install is still there to
// inspect and remove.
func install(ctx context.Context, a *app, p *kube.Provider, plan *budget.Plan, o kube.UpOptions, mark func(*cluster.KubeRecord)) error {
	dir, err := local.StateDir(a.cfg.Name)
	if err != nil {
		return err
	}
	var rec cluster.KubeRecord
	o.Installing = func(server string) error {
		rec = p.Record(server)
		if mark != nil {
			mark(&rec)
		}
		if err := cluster.WriteKubeRecord(dir, rec); err != nil {
			return fmt.Errorf("recording where the stack is: %w", err)
		}
		return nil
	}
	res, err := p.Up(ctx, plan, o)
	if err != nil {
		return err
	}
	if err := timeline.Append(dir, timeline.New(rec.Provider, plan, "", nil)); err != nil {
		return err
	}
	return a.printObject(res, func(w io.Writer) error {
		fmt.Fprintf(w, "stack %q is installed in %s (namespace %s, release %s revision %d, %s)\n", a.cfg.Name, res.Server, res.Namespace, res.Release, res.Revision, res.Status)
		if !o.Wait {
			fmt.Fprintf(w, "not waiting for the pods (--wait=false): crawlctl status shows them\n")
		}
		e := rec.Endpoints
		fmt.Fprintf(w, "  api:        %s\n  prometheus: %s\n  grid:       %s\n", e.API, e.Prometheus, e.Grid)
		if rec.PortForward {
			fmt.Fprintf(w, "reach them with: %s\n", cluster.PortForwards(rec.Namespace))
		}
		fmt.Fprintf(w, "next: crawlctl seed --count 20\n")
		return nil
	})
}

// createKind creates (or reuses) the stack's kind cluster, sized and
// capped to the budget, waits until it is ready, loads the runtime image
// into it and installs KEDA (unless --install-keda=false) and the stack.
func createKind(ctx context.Context, a *app, p *kind.Provider, plan *budget.Plan, ko kubeFlags, timeout time.Duration) error {
	dir, err := local.StateDir(a.cfg.Name)
	if err != nil {
		return err
	}
	c, err := p.Up(ctx, plan, filepath.Join(dir, "kind"))
	if err != nil {
		return err
	}
	kp := kube.NewProvider(a.cfg.Name, kube.WithKubeconfig(c.Kubeconfig, ""), kube.WithNamespace(ko.namespace),
		kube.WithProgress(a.progress), kube.WithLogger(a.log))
	if err := kp.WaitReady(ctx, 3*time.Minute); err != nil {
		return err
	}
	a.progress("kind cluster %s is ready: node Ready, CoreDNS ready", c.Name)
	image, browserImage := ko.image, ko.browserImage
	if image == "" || (browserImage == "" && plan.GridWorkers > 0) {
		bin, self, err := kind.FindRuntimeBinary(ko.runtimeBinary)
		if err != nil {
			return usageError{err}
		}
		if self {
			a.progress("warning: no %s beside this crawlctl, so the images hold this full build, which costs every pod memory "+
				"(docs/kind.md); build one with `CGO_ENABLED=0 go build -tags crawlctl_runtime -o %s ./cmd/crawlctl` or pass --runtime-binary",
				kind.RuntimeBinaryName, kind.RuntimeBinaryName)
		}
		if image == "" {
			if image, err = p.LoadRuntimeImage(ctx, bin); err != nil {
				return err
			}
		}
		if browserImage == "" && plan.GridWorkers > 0 {
			if browserImage, err = p.LoadBrowserImage(ctx, bin); err != nil {
				return err
			}
		}
	}
	api, prom, grid := p.Ports.Endpoints()
	err = install(ctx, a, kp, plan, kube.UpOptions{Image: image, BrowserImage: browserImage, Target: ko.target, Wait: ko.wait, Timeout: timeout,
		InstallKEDA: ko.installKEDA, KEDA: ko.keda()},
		func(r *cluster.KubeRecord) {
			r.Provider = cluster.Kind
			r.Endpoints = cluster.Endpoints{API: api, Prometheus: prom, Grid: grid}
		})
	if errors.Is(err, kube.ErrNoKEDA) { // --install-keda=false
		return fmt.Errorf("kind cluster %s is up, its node capped at %dMi, image %s in it, but %w; "+
			"then run `crawlctl up --provider kind` again, which reuses the cluster and the image (kubeconfig: %s)",
			c.Name, c.NodeMemory, image, err, c.Kubeconfig)
	}
	return err
}

// kubeRecord is the record of a stack installed with --provider kube, or
// nil.
func (a *app) kubeRecord() (*cluster.KubeRecord, error) {
	dir, err := local.StateDir(a.cfg.Name)
	if err != nil {
		return nil, err
	}
	return cluster.ReadKubeRecord(dir)
}

// downKube uninstalls a recorded stack and forgets it.
func downKube(ctx context.Context, a *app, r *cluster.KubeRecord, timeout time.Duration) error {
	dir, err := local.StateDir(a.cfg.Name)
	if err != nil {
		return err
	}
	p := kube.FromRecord(*r, kube.WithProgress(a.progress), kube.WithLogger(a.log))
	was, err := p.Down(ctx, timeout)
	if err != nil {
		return fmt.Errorf("%w (to forget this stack without uninstalling it, delete %s)", err, filepath.Join(dir, "kube.json"))
	}
	if err := cluster.RemoveKubeRecord(dir); err != nil {
		return err
	}
	if was {
		a.progress("stack %q is uninstalled from %s", a.cfg.Name, r.Server)
	} else {
		a.progress("stack %q was not installed in %s", a.cfg.Name, r.Server)
	}
	if r.Provider == cluster.Kind {
		a.progress("the kind cluster stays: crawlctl down --provider kind deletes it")
	}
	return nil
}

// statusKube prints a recorded stack's release and workloads.
func statusKube(ctx context.Context, a *app, r *cluster.KubeRecord) error {
	st, err := kube.FromRecord(*r, kube.WithLogger(a.log)).Status(ctx)
	if err != nil {
		return err
	}
	return a.printObject(st, func(w io.Writer) error {
		fmt.Fprintf(w, "stack %q (kube, %s): release %s revision %d %s, namespace %s, updated %s\n\n",
			a.cfg.Name, r.Server, st.Release, st.Revision, st.State, st.Namespace, st.Updated.Format(time.RFC3339))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tKIND\tREADY\tDESIRED\tMEMORY LIMIT")
		for _, x := range st.Workloads {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%dMi\n", x.Name, x.Kind, x.Ready, x.Desired, x.MemoryLimitMi)
		}
		return tw.Flush()
	})
}
