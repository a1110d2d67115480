package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/config"
	"github.com/crawlctl/crawlctl/pkg/egress"
	"github.com/crawlctl/crawlctl/pkg/openlibrary"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/runtime/api"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// progress prints a line of crawlctl's own on stderr unless -q.
func (a *app) progress(format string, args ...any) {
	if !a.cfg.Quiet {
		fmt.Fprintf(a.errOut, "• "+format+"\n", args...)
	}
}

// printer is where providers print their step lines: stderr, nil with -q.
func (a *app) printer() stack.Printer {
	if a.cfg.Quiet {
		return nil
	}
	return func(line string) { fmt.Fprintln(a.errOut, line) }
}

// provider is the provider of the configured stack: the one opts name, or
// the one the stack was brought up with.
func (a *app) provider(opts ...cluster.Option) (cluster.Provider, error) {
	return cluster.New(a.cfg.Name, append([]cluster.Option{cluster.WithPrinter(a.printer()), cluster.WithLogger(a.log)}, opts...)...)
}

// access is where seed and collect reach the stack.
func (a *app) access(ctx context.Context) (*stack.Access, error) {
	p, err := a.provider()
	if err != nil {
		return nil, err
	}
	return p.Access(ctx)
}

func newUpCommand(a *app) *cobra.Command {
	var (
		o                      = stack.DefaultUpOptions()
		provider, kubeconfig   string
		kubeContext, namespace string
		dryRunDir, hostMemory  string
		installKEDA            bool
		dryRun, sizeFromNodes  bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the crawl stack up (local processes, a kind cluster, or an existing cluster)",
		Long: `up sizes the stack with the budget (see crawlctl budget), starts it and waits
until every component is ready, then prints the endpoints. Each step prints
a line on stderr with its duration; a failure names the step.

--provider auto (the default) keeps the provider of a stack that is up;
else it picks kind when a Docker daemon answers with room for the budget's
node (memory and CPUs, as kind's preflight checks), and local when none
answers or it has too little room (the first progress line says which, and
why).
The local provider runs the stack as processes under a supervisor: the
Kafka-protocol broker and the Redis-protocol server are in memory. Running
up again with other settings applies them to the running stack.
--provider kind creates (or reuses) a single-node kind cluster capped at the
budget, loads the runtime image into it and installs KEDA and the charts.
--provider kube installs the same charts into the cluster of a kubeconfig
(images from --image); running up again upgrades it to the current flags.`,
		Example: `  crawlctl up
  crawlctl up --proxies 1 --sim-time-factor 10
  crawlctl up --provider local --partitions 8
  crawlctl up --provider kube --context staging --image registry.example/crawlctl:v1
  crawlctl up --provider kind --dry-run -d out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateUp(o, cmd.Flags().Changed("timeout")); err != nil {
				return err
			}
			if cmd.Flags().Changed("install-keda") {
				o.InstallKEDA = &installKEDA
			}
			o.NodeImage = a.cfg.NodeImage
			ctx := cmd.Context()
			plan, err := a.plan()
			if err != nil {
				return err
			}
			chosen, why, err := cluster.Choose(ctx, a.cfg.Name, provider, plan)
			if err != nil {
				return err
			}
			a.progress("provider %s: %s", chosen, why)
			if chosen == stack.Local && (len(o.Values) > 0 || len(o.Set) > 0) {
				return usageErrorf("--values and --set are chart values: give --provider kind or kube")
			}
			if v := os.Getenv("CRAWLCTL_VALUES"); v != "" && chosen != stack.Local && !cmd.Flags().Changed("values") {
				o.Values = []string{v}
			}
			if v := os.Getenv("CRAWLCTL_KEDA_REPO"); v != "" && !cmd.Flags().Changed("keda-repo") {
				o.KEDARepo = v
			}
			if v := os.Getenv("CRAWLCTL_BROWSER_BASE"); v != "" && !cmd.Flags().Changed("browser-base") {
				o.BrowserBase = v
			}
			if o.GridListen != "" && chosen != stack.Local {
				return usageErrorf("--grid-listen is for the local provider: %s maps the grid to 127.0.0.1:%d", chosen, stack.DefaultPorts.Grid)
			}
			p, err := a.provider(cluster.WithProvider(chosen), cluster.WithKubeconfig(kubeconfig, kubeContext), cluster.WithNamespace(namespace))
			if err != nil {
				return err
			}
			if sizeFromNodes {
				if err := a.sizeFromCluster(ctx, cmd, p); err != nil {
					return err
				}
				if plan, err = a.plan(); err != nil {
					return err
				}
			}
			if dryRun {
				return a.dryRun(ctx, p, plan, o, dryRunDir, hostMemory)
			}
			rep, err := p.Up(ctx, plan, o)
			if err != nil {
				return err
			}
			return a.printObject(rep, rep.WriteTable)
		},
	}
	addBudgetFlags(cmd)
	f := cmd.Flags()
	config.AddNodeImageFlag(f)
	f.StringVar(&provider, "provider", stack.Auto, "auto (local), local, kind, or kube (an existing cluster)")
	f.StringVar(&o.Target, "target", o.Target, "crawl target base URL (default: the built-in Open Library simulator)")
	f.StringVar(&o.ProxyAssignment, "proxy-assignment", o.ProxyAssignment, "workers' proxy choice: pace (per request, paced) or hash (the reference's fixed hash(hostname) % pool)")
	f.Float64Var(&o.SimTimeFactor, "sim-time-factor", o.SimTimeFactor, "scale the simulator's rate limits (10: ten times faster runs)")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the stack to be ready (default 2m local, 10m kind and kube)")
	f.DurationVar(&o.ScrapeInterval, "scrape-interval", o.ScrapeInterval, "how often the local metrics store scrapes every component")
	f.StringVar(&o.GridListen, "grid-listen", "", "with --grid-workers, local provider: the grid's loopback address (default 127.0.0.1:8080, or a free port when it is taken)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "with --provider kube: the kubeconfig (default $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "with --provider kube: the kubeconfig context (default its current one)")
	f.StringVar(&namespace, "namespace", "", "with --provider kind or kube: the stack's namespace (default crawl)")
	f.StringVar(&o.Image, "image", "", "with --provider kind or kube: the runtime image (crawlctl built with -tags crawlctl_runtime)")
	f.StringVar(&o.RuntimeBinary, "runtime-binary", "", "with --provider kind and no --image: the runtime build to put in the image (default: crawlctl-runtime beside crawlctl)")
	f.StringVar(&o.BrowserImage, "browser-image", "", "with --provider kind or kube: the browser worker image")
	f.StringVar(&o.BrowserBase, "browser-base", "", "with --provider kind: the image the browser worker image is built on, with chromium on PATH and playwright-core under "+
		playwright.ImagePrefix+" (default $CRAWLCTL_BROWSER_BASE, else the official Playwright image)")
	f.BoolVar(&sizeFromNodes, "size-from-cluster", false, "with --provider kube: size the budget from the schedulable nodes' allocatable memory and CPU")
	f.BoolVar(&installKEDA, "install-keda", false, "install KEDA from its official chart when the cluster has none (default: true with --provider kind, false with kube)")
	f.StringVar(&o.KEDARepo, "keda-repo", o.KEDARepo, "with --install-keda: KEDA's chart repository, a URL or a directory served on loopback (default $CRAWLCTL_KEDA_REPO, else the official one)")
	f.StringVar(&o.KEDAVersion, "keda-version", o.KEDAVersion, "with --install-keda: KEDA's chart version")
	f.StringArrayVarP(&o.Values, "values", "f", nil, "with --provider kind or kube: a chart values file, as helm's -f (repeat; default $CRAWLCTL_VALUES; scripts/kind-offline.sh writes one)")
	f.StringArrayVar(&o.Set, "set", nil, "with --provider kind or kube: a chart value KEY=VALUE, as helm's --set (repeat), e.g. images.redis=registry.example/redis:7")
	f.BoolVar(&o.ClusterOnly, "cluster-only", false, "with --provider kind: create (or reuse) the cluster, capped and ready, and install nothing in it")
	f.BoolVar(&o.Wait, "wait", o.Wait, "with --provider kind or kube: wait until every workload is ready (up to --timeout)")
	f.BoolVar(&dryRun, "dry-run", false, "with --provider kind or kube: write what would be created (kind-config.yaml, manifests.yaml) and touch nothing")
	f.StringVarP(&dryRunDir, "dry-run-dir", "d", "crawlctl-dry-run", "where --dry-run writes")
	f.StringVar(&hostMemory, "host-memory", "", "with --dry-run: the Docker VM's memory (e.g. 16Gi), so the kubelet reserves what is above the budget")
	return cmd
}

// validateUp checks up's own flags before anything starts: a value out of
// range is refused, never replaced by a default.
func validateUp(o stack.UpOptions, timeoutGiven bool) error {
	if o.Target != "" {
		if _, err := openlibrary.NewTarget(o.Target); err != nil {
			return usageErrorf("--target: %v", err)
		}
	}
	if err := egress.Assignment(o.ProxyAssignment).Validate(); err != nil {
		return usageErrorf("--proxy-assignment: %v", err)
	}
	if !(o.SimTimeFactor > 0) || math.IsInf(o.SimTimeFactor, 0) {
		return usageErrorf("--sim-time-factor %v: give a factor above 0 (1 is real time, 10 ten times faster)", o.SimTimeFactor)
	}
	if o.ScrapeInterval < 100*time.Millisecond {
		return usageErrorf("--scrape-interval %v: give 100ms or more (default 5s)", o.ScrapeInterval)
	}
	if timeoutGiven && o.Timeout <= 0 {
		return usageErrorf("--timeout %v: give a positive duration such as 2m", o.Timeout)
	}
	if o.GridListen != "" {
		if _, port, err := net.SplitHostPort(o.GridListen); err != nil || port == "0" {
			return usageErrorf("--grid-listen %q: give host:port, such as 127.0.0.1:8080", o.GridListen)
		}
		if !serve.LoopbackOnly(o.GridListen) {
			return usageErrorf("--grid-listen %s is reachable from other hosts, and the local grid has no token: give a loopback address such as 127.0.0.1:8080", o.GridListen)
		}
	}
	return nil
}

// sizeFromCluster sets the budget's node size to what the cluster's
// schedulable nodes can allocate.
func (a *app) sizeFromCluster(ctx context.Context, cmd *cobra.Command, p cluster.Provider) error {
	s, ok := p.(cluster.Sizer)
	if !ok {
		return usageErrorf("--size-from-cluster reads an existing cluster: add --provider kube")
	}
	if cmd.Flags().Changed("node-memory") || cmd.Flags().Changed("node-cpu") {
		return usageErrorf("--size-from-cluster takes the node size from the cluster: drop --node-memory and --node-cpu, or drop --size-from-cluster")
	}
	c, err := s.Allocatable(ctx)
	if err != nil {
		return err
	}
	a.cfg.Input.NodeMemory, a.cfg.Input.NodeCPU = fmt.Sprintf("%dMi", c.MemoryMi), fmt.Sprintf("%dm", c.CPUm)
	a.progress("sizing from the cluster: %d schedulable nodes with %dMi and %dm allocatable", c.Nodes, c.MemoryMi, c.CPUm)
	return nil
}

// dryRun writes what the provider would create and prints the files.
func (a *app) dryRun(ctx context.Context, p cluster.Provider, plan *budget.Plan, o stack.UpOptions, dir, hostMemory string) error {
	dr, ok := p.(cluster.DryRunner)
	if !ok {
		return usageErrorf("--dry-run shows what the kind or kube provider would create: add --provider kind or --provider kube")
	}
	do := stack.DryRunOptions{Dir: dir}
	if hostMemory != "" {
		q, err := resource.ParseQuantity(hostMemory)
		if err != nil {
			return usageErrorf("--host-memory %q: %v", hostMemory, err)
		}
		do.HostMemoryMi = q.Value() >> 20
	}
	files, err := dr.DryRun(ctx, plan, o, do)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(a.out, f)
	}
	return nil
}

func newDownCommand(a *app) *cobra.Command {
	var (
		o        stack.DownOptions
		provider string
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the crawl stack (or uninstall it from the cluster it was installed in)",
		Long: `down stops the local stack, or uninstalls the stack from the cluster that
up --provider kube or kind installed it in. --provider kind deletes the
stack's kind cluster, everything in it with it. Each is a no-op when there is
nothing to stop. --purge also deletes the stack's state directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts []cluster.Option
			switch provider {
			case "":
			case stack.Kind:
				opts = append(opts, cluster.WithProvider(stack.Kind))
			default:
				return usageErrorf("down --provider %q: give kind to delete the kind cluster, or nothing for the stack up runs", provider)
			}
			p, err := a.provider(opts...)
			if err != nil {
				return err
			}
			_, err = p.Down(cmd.Context(), o)
			return err
		},
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "also delete the state directory (logs, graph store, metrics)")
	cmd.Flags().StringVar(&provider, "provider", "", "kind: delete the stack's kind cluster")
	return cmd
}

func newStatusCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show components, replicas, frontier lag and run progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.provider()
			if err != nil {
				return err
			}
			st, err := p.Status(cmd.Context())
			if err != nil {
				return err
			}
			return a.printObject(st, st.WriteTable)
		},
	}
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
			acc, err := a.access(cmd.Context())
			if err != nil {
				return err
			}
			run, err := api.CreateRun(cmd.Context(), acc.Endpoints.API, acc.APIToken, api.RunRequest{Name: runName, Seeds: seeds, MaxDepth: &maxDepth})
			var refused *api.RefusedError
			if errors.As(err, &refused) {
				return usageError{err}
			}
			if err != nil {
				return withHint(err, acc.Hint)
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
	seeds, err := api.ReadSeedFile(file)
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	return seeds, nil
}
