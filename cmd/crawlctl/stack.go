package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/cluster/kind"
	"github.com/crawlctl/crawlctl/pkg/cluster/local"
	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
)

// progress prints a step line on stderr unless -q.
func (a *app) progress(format string, args ...any) {
	if !a.cfg.Quiet {
		fmt.Fprintf(a.errOut, "• "+format+"\n", args...)
	}
}

// endpoints are where seed and collect reach the stack: the local stack's,
// or those recorded for a cluster, with what to do when they do not answer
// (empty for the local stack), and the local stack's state directory (""
// for a cluster).
func (a *app) endpoints() (cluster.Endpoints, string, string, error) {
	if r, err := a.kubeRecord(); err != nil {
		return cluster.Endpoints{}, "", "", err
	} else if r != nil {
		return r.Endpoints, r.Unreachable(), "", nil
	}
	p, err := a.localProvider()
	if err != nil {
		return cluster.Endpoints{}, "", "", err
	}
	st, err := local.ReadState(p.Dir)
	if errors.Is(err, local.ErrNotUp) {
		return cluster.Endpoints{}, "", "", notUp(a.cfg.Name, err)
	}
	if err != nil {
		return cluster.Endpoints{}, "", "", err
	}
	return st.Endpoints, "", p.Dir, nil
}

// notUp says a stack is not up: that its supervisor died, when it did.
func notUp(name string, err error) error {
	var died *local.DiedError
	if errors.As(err, &died) {
		return died
	}
	return fmt.Errorf("stack %q is not up: run `crawlctl up` first", name)
}

// localProvider is the local provider of the configured stack name.
func (a *app) localProvider() (*local.Provider, error) {
	p, err := local.New(a.cfg.Name)
	if err != nil {
		return nil, err
	}
	p.Progress = a.progress
	return p, nil
}

// kubeFlags are up's flags for the providers that deploy the chart.
type kubeFlags struct {
	kubeconfig, context, namespace string
	image, browserImage, target    string
	runtimeBinary                  string
	wait, sizeFromCluster          bool
	installKEDA                    bool
	kedaRepo, kedaVersion          string
}

func newUpCommand(a *app) *cobra.Command {
	var (
		ko                                      kubeFlags
		provider, target, assignment, dryRunDir string
		timeFactor                              float64
		timeout, scrape                         time.Duration
		dryRun                                  bool
		hostMemory                              string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the crawl stack up (local processes, or a Kind cluster when Docker answers)",
		Long: `up sizes the stack with the budget (see crawlctl budget), starts it and waits
until every component is ready, then prints the endpoints.

--provider auto picks kind when a Docker daemon answers and local otherwise.
The local provider runs the stack as processes under a supervisor: the
Kafka-protocol broker and the Redis-protocol server are in memory.
--provider kube installs the same charts into the cluster of a kubeconfig
(KEDA installed first; images from --image); running up again upgrades it
to the current flags.`,
		Example: `  crawlctl up
  crawlctl up --proxies 1 --sim-time-factor 10
  crawlctl up --provider local --partitions 8
  crawlctl up --provider kube --context staging --image registry.example/crawlctl:v1
  crawlctl up --provider kind --dry-run -d out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateUp(target, assignment, timeFactor, scrape, timeout); err != nil {
				return err
			}
			ctx := cmd.Context()
			chosen, why, err := cluster.Choose(ctx, provider)
			if err != nil {
				return usageError{err}
			}
			a.progress("provider %s: %s", chosen, why)
			ko.target = target
			if chosen != cluster.Local && !cmd.Flags().Changed("timeout") {
				timeout = 10 * time.Minute // pulling images into a cluster takes longer than starting processes
			}
			if chosen == cluster.Kind && !cmd.Flags().Changed("install-keda") {
				ko.installKEDA = true // crawlctl's own cluster: KEDA is part of the stack
			}
			switch chosen {
			case cluster.Kind:
				return upKind(ctx, a, ko, dryRun, dryRunDir, hostMemory, timeout)
			case cluster.Kube:
				if ko.sizeFromCluster {
					if cmd.Flags().Changed("node-memory") || cmd.Flags().Changed("node-cpu") {
						return usageErrorf("--size-from-cluster takes the node size from the cluster: drop --node-memory and --node-cpu, or drop --size-from-cluster")
					}
					if err := sizeFromCluster(ctx, a, ko); err != nil {
						return err
					}
				}
				plan, err := budget.Compute(a.cfg.Input)
				if err != nil {
					return usageError{err}
				}
				if dryRun {
					path, err := renderManifests(a, dryRunDir, plan, ko)
					if err != nil {
						return err
					}
					fmt.Fprintln(a.out, path)
					return nil
				}
				return upKube(ctx, a, plan, ko, timeout)
			}
			if dryRun {
				return usageErrorf("--dry-run shows what the kind or kube provider would create: add --provider kind or --provider kube")
			}
			if r, err := a.kubeRecord(); err != nil {
				return err
			} else if r != nil {
				return usageErrorf("stack %q is installed in the cluster at %s (namespace %s): run `crawlctl down` first, or name another stack with --name", a.cfg.Name, r.Server, r.Namespace)
			}
			p, err := a.localProvider()
			if err != nil {
				return err
			}
			res, err := p.Up(ctx, local.Spec{Name: a.cfg.Name, Budget: a.cfg.Input, Target: target, SimTimeFactor: timeFactor,
				ScrapeInterval: scrape, ProxyAssignment: assignment}, timeout)
			if err != nil {
				return err
			}
			switch {
			case res.AlreadyUp:
				a.progress("already up (pid %d)", res.State.PID)
			case res.Changed:
				a.progress("new settings applied; runs in progress continue")
			}
			return a.printObject(res.State, func(w io.Writer) error {
				e := res.State.Endpoints
				fmt.Fprintf(w, "stack %q is up (local, supervisor pid %d, state in %s)\n", a.cfg.Name, res.State.PID, p.Dir)
				fmt.Fprintf(w, "  api:        %s\n", e.API)
				fmt.Fprintf(w, "  prometheus: %s (PromQL HTTP API)\n", e.Prometheus)
				if e.Simulator != "" {
					fmt.Fprintf(w, "  simulator:  %s\n", e.Simulator)
				}
				if e.Grid != "" {
					fmt.Fprintf(w, "  grid:       %s (chromium.connect)\n", e.Grid)
				}
				fmt.Fprintf(w, "  kafka:      %s (in memory)\n  redis:      %s (in memory)\n", e.Kafka, e.Redis)
				fmt.Fprintf(w, "next: crawlctl seed --count 20\n")
				return nil
			})
		},
	}
	addBudgetFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&provider, "provider", cluster.Auto, "auto, local, kind or kube (an existing cluster)")
	f.StringVar(&ko.kubeconfig, "kubeconfig", "", "with --provider kube: the kubeconfig (default $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&ko.context, "context", "", "with --provider kube: the kubeconfig context (default its current one)")
	f.StringVar(&ko.namespace, "namespace", "crawl", "with --provider kind or kube: the stack's namespace")
	f.StringVar(&ko.image, "image", "", "with --provider kind or kube: the runtime image (crawlctl built with -tags crawlctl_runtime)")
	f.StringVar(&ko.runtimeBinary, "runtime-binary", "", "with --provider kind and no --image: the runtime build to put in the image (default: crawlctl-runtime beside crawlctl)")
	f.StringVar(&ko.browserImage, "browser-image", "", "with --provider kind or kube: the browser worker image")
	f.BoolVar(&ko.sizeFromCluster, "size-from-cluster", false, "with --provider kube: size the budget from the schedulable nodes' allocatable memory and CPU")
	addKEDAFlags(f, &ko)
	f.BoolVar(&ko.wait, "wait", true, "with --provider kube: wait until every workload is ready (up to --timeout)")
	f.StringVar(&target, "target", "", "crawl target base URL (default: the built-in Open Library simulator)")
	f.StringVar(&assignment, "proxy-assignment", "pace", "workers' proxy choice: pace (per request, paced) or hash (the reference's fixed hash(hostname) % pool)")
	f.Float64Var(&timeFactor, "sim-time-factor", 1, "scale the simulator's rate limits (10: ten times faster runs)")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the stack to be ready (kind and kube: 10m unless given)")
	f.DurationVar(&scrape, "scrape-interval", 5*time.Second, "how often the metrics store scrapes every component")
	f.BoolVar(&dryRun, "dry-run", false, "with --provider kind or kube: write what would be created (kind-config.yaml, manifests.yaml) and touch nothing")
	f.StringVarP(&dryRunDir, "dry-run-dir", "d", "crawlctl-dry-run", "where --dry-run writes")
	f.StringVar(&hostMemory, "host-memory", "", "with --dry-run: the Docker VM's memory (e.g. 16Gi), so the kubelet reserves what is above the budget")
	return cmd
}

// validateUp checks up's own flags before anything starts: a value out of
// range is refused, never replaced by a default.
func validateUp(target, assignment string, timeFactor float64, scrape, timeout time.Duration) error {
	if target != "" {
		if _, err := openlibrary.NewTarget(target); err != nil {
			return usageErrorf("--target: %v", err)
		}
	}
	if err := egress.Assignment(assignment).Validate(); err != nil {
		return usageErrorf("--proxy-assignment: %v", err)
	}
	if !(timeFactor > 0) || math.IsInf(timeFactor, 0) {
		return usageErrorf("--sim-time-factor %v: give a factor above 0 (1 is real time, 10 ten times faster)", timeFactor)
	}
	if scrape < 100*time.Millisecond {
		return usageErrorf("--scrape-interval %v: give 100ms or more (default 5s)", scrape)
	}
	if timeout <= 0 {
		return usageErrorf("--timeout %v: give a positive duration such as 2m", timeout)
	}
	return nil
}

// upKind runs the kind provider: a dry run writes its files (the cluster
// config and the rendered chart); otherwise it creates the cluster.
func upKind(ctx context.Context, a *app, ko kubeFlags, dryRun bool, dir, hostMemory string, timeout time.Duration) error {
	plan, err := budget.Compute(a.cfg.Input)
	if err != nil {
		return usageError{err}
	}
	p := &kind.Provider{Name: a.cfg.Name, Progress: a.progress, Log: a.log}
	if !dryRun {
		return createKind(ctx, a, p, plan, ko, timeout)
	}
	var hostMi int64
	if hostMemory != "" {
		q, err := resource.ParseQuantity(hostMemory)
		if err != nil {
			return usageErrorf("--host-memory %q: %v", hostMemory, err)
		}
		hostMi = q.Value() >> 20
	}
	files, err := p.DryRun(dir, plan, hostMi)
	if err != nil {
		return usageError{err}
	}
	manifests, err := renderManifests(a, dir, plan, ko)
	if err != nil {
		return err
	}
	for _, f := range append(files, manifests) {
		fmt.Fprintln(a.out, f)
	}
	return nil
}

func newDownCommand(a *app) *cobra.Command {
	var (
		purge    bool
		provider string
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the crawl stack (or uninstall it from the cluster up --provider kube installed it in)",
		Long: `down stops the local stack, or uninstalls the stack from the cluster that
up --provider kube installed it in. --provider kind deletes the stack's kind
cluster. Each is a no-op when there is nothing to stop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch provider {
			case "":
			case cluster.Kind:
				was, err := (&kind.Provider{Name: a.cfg.Name, Log: a.log}).Down()
				if err != nil {
					return err
				}
				if was {
					a.progress("kind cluster %q is deleted", a.cfg.Name)
				} else {
					a.progress("there was no kind cluster %q", a.cfg.Name)
				}
				return nil
			default:
				return usageErrorf("down --provider %q: give kind to delete the kind cluster, or nothing for the stack up runs", provider)
			}
			if r, err := a.kubeRecord(); err != nil {
				return err
			} else if r != nil {
				return downKube(cmd.Context(), a, r, 5*time.Minute)
			}
			p, err := a.localProvider()
			if err != nil {
				return err
			}
			wasUp, err := p.Down(cmd.Context(), purge, 2*time.Minute)
			if err != nil {
				return err
			}
			if wasUp {
				a.progress("stack %q is down", a.cfg.Name)
			} else {
				a.progress("stack %q was not up", a.cfg.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the state directory (logs, graph store)")
	cmd.Flags().StringVar(&provider, "provider", "", "kind: delete the stack's kind cluster")
	return cmd
}

func newStatusCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show components, replicas, frontier lag and run progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r, err := a.kubeRecord(); err != nil {
				return err
			} else if r != nil {
				return statusKube(cmd.Context(), a, r)
			}
			p, err := a.localProvider()
			if err != nil {
				return err
			}
			st, err := p.Status(cmd.Context())
			if errors.Is(err, local.ErrNotUp) {
				return notUp(a.cfg.Name, err)
			}
			if err != nil {
				return err
			}
			return a.printObject(st, func(w io.Writer) error { return writeStatus(w, st) })
		},
	}
}

func writeStatus(w io.Writer, st *local.Status) error {
	fmt.Fprintf(w, "stack %q (%s, supervisor pid %d), api %s\n\n", st.Name, st.Provider, st.PID, st.Endpoints.API)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tREADY\tDESIRED\tMAX\tRESTARTS")
	restarts := map[string]int{}
	for _, c := range st.Components {
		restarts[c.Name] += c.Restarts
	}
	for _, name := range []string{budget.Proxy, budget.GraphWriter, budget.Worker, budget.GridProxy, budget.Browser} {
		r, ok := st.Replicas[name]
		if !ok && (name == budget.GridProxy || name == budget.Browser) {
			continue // no grid
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", name, r.Ready, r.Desired, r.Max, restarts[name])
	}
	tw.Flush()
	if len(st.Grid) > 0 {
		fmt.Fprintf(w, "\ngrid %s\n", st.Endpoints.Grid)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GRID WORKER\tSTATUS\tACTIVE\tLIFETIME")
		for _, g := range st.Grid {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d/%d\n", g.ID, g.Status, g.Active, g.MaxConcurrent, g.Lifetime, g.MaxLifetime)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nfrontier lag: %d", st.LagTotal)
	var busy []string
	for _, l := range st.Lag {
		if l.Lag > 0 {
			busy = append(busy, fmt.Sprintf("p%d=%d", l.Partition, l.Lag))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(busy, " "))
	}
	fmt.Fprintln(w)
	if r := st.Run; r != nil {
		c := r.Counters
		fmt.Fprintf(w, "run %s (%s): %s; enqueued %d, crawled %d, deduped %d, retried %d, dlq %d, edges written %d\n",
			r.ID, r.Name, r.State, c.Enqueued, c.Crawled, c.Deduped, c.Retried, c.DLQ, c.EdgesWritten)
	}
	return nil
}

func newSeedCommand(a *app) *cobra.Command {
	var (
		count, maxDepth int
		file, runName   string
	)
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Start a crawl run from seeds",
		Long: `seed creates a crawl run and publishes its seeds. Seeds are Open Library ids
(OL9388A, OL17732W), paths (/subjects/love), URLs on the target, or search
terms. --count N takes the first N of the 20 built-in seeds (18 authors,
Shakespeare first, and two works); --file reads one seed per line or a JSON
list. A bad seed is reported and nothing is enqueued.
`,
		Example: `  crawlctl seed --count 20
  crawlctl seed --file seeds.txt --run-name poets --max-depth 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seeds, err := readSeeds(count, file)
			if err != nil {
				return usageError{err}
			}
			e, unreachable, _, err := a.endpoints()
			if err != nil {
				return err
			}
			run, err := createRun(cmd.Context(), e.API, api.RunRequest{Name: runName, Seeds: seeds, MaxDepth: &maxDepth})
			var ue usageError
			if errors.As(err, &ue) {
				return err
			}
			if err != nil {
				return withHint(err, unreachable)
			}
			return a.printObject(run, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s\n", run.ID)
				a.progress("run %s: %d seeds, max depth %d; follow it with crawlctl status", run.ID, len(run.Seeds), run.MaxDepth)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&count, "count", 0, fmt.Sprintf("use the first N of the %d built-in seeds", len(openlibrary.Seeds)))
	f.StringVar(&file, "file", "", "seed file: one seed per line, or a JSON list")
	f.StringVar(&runName, "run-name", "run", "the run's name (--name selects the stack)")
	f.IntVar(&maxDepth, "max-depth", api.DefaultMaxDepth, "how many links deep to crawl from the seeds")
	return cmd
}

// readSeeds takes the built-in seeds or a file.
func readSeeds(count int, file string) ([]string, error) {
	switch {
	case count > 0 && file != "":
		return nil, errors.New("give --count or --file, not both")
	case count > len(openlibrary.Seeds):
		return nil, fmt.Errorf("--count %d: there are %d built-in seeds", count, len(openlibrary.Seeds))
	case count > 0:
		return openlibrary.Seeds[:count], nil
	case count < 0:
		return nil, fmt.Errorf("--count must be positive (got %d)", count)
	case file == "":
		return nil, errors.New("no seeds: give --count N (built-in seeds) or --file FILE")
	}
	return readSeedFile(file)
}

// createRun posts a run to the control API.
func createRun(ctx context.Context, apiURL string, req api.RunRequest) (*runstate.Run, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/v1/runs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("calling the control API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusBadRequest {
			return nil, usageErrorf("%s (nothing was enqueued)", e.Error.Message)
		}
		return nil, fmt.Errorf("the control API answered %s: %s", resp.Status, e.Error.Message)
	}
	var run runstate.Run
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil {
		return nil, err
	}
	return &run, nil
}

func newRunSupervisorCommand(a *app) *cobra.Command {
	var dir string
	cmd := runtimeCommand(a, "supervisor", "Local provider supervisor (started by crawlctl up)",
		func(ctx context.Context, log *slog.Logger) error {
			if dir == "" {
				return usageErrorf("--state-dir is required (crawlctl up passes it)")
			}
			return local.RunSupervisor(ctx, dir, log)
		})
	cmd.Flags().StringVar(&dir, "state-dir", "", "the stack's state directory (spec.json in, state.json and logs out)")
	return cmd
}
