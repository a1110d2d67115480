package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/cluster"
	"github.com/crawlctl/crawlctl/pkg/collect"
	"github.com/crawlctl/crawlctl/pkg/runstate"
	"github.com/crawlctl/crawlctl/pkg/stack"
	"github.com/crawlctl/crawlctl/pkg/timeline"
)

func newCollectCommand(a *app) *cobra.Command {
	var (
		o            collect.Options
		untilDrained bool
	)
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Snapshot a run's metrics into raw_data/metrics/<scenario>/<run>/",
		Long: `collect writes, for a run (the newest unless --run), a folder holding
screenshots/overview.png (frontier lag per partition, replicas, 429s per
egress, throughput, edges/s, fetch latency, errors), csv_data/<panel>.csv,
run.json (settings, budget plan, seeds, times, totals) and summary.md (time
to drain, peak lag, stuck partitions, 429s per egress, replica timeline,
edges/s, DLQ by reason). It reads the Prometheus HTTP API and the control
API only. --until-drained first waits for the run to drain.`,
		Example: `  crawlctl collect --until-drained
  crawlctl collect --run r20261124-101500-abc123 --scenario egress_study --folder 3_proxies_paced`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{{"--step", o.Step}, {"--rate-window", o.RateWindow}, {"--stuck-after", o.StuckAfter}} {
				if d.v <= 0 {
					return usageErrorf("%s %v: give a positive duration", d.flag, d.v)
				}
			}
			ctx := cmd.Context()
			dir, err := stack.Dir(a.cfg.Name)
			if err != nil {
				return err
			}
			if o.Timeline, err = timeline.Read(dir); err != nil {
				return err
			}
			acc, err := a.access(ctx)
			if errors.Is(err, stack.ErrNotUp) {
				return a.collectArchive(ctx, o, err)
			}
			if err != nil {
				return err
			}
			o.Prometheus, o.API, o.APIToken = acc.Endpoints.Prometheus, acc.Endpoints.API, acc.APIToken
			var res *collect.Result
			if untilDrained {
				res, err = collect.UntilDrained(ctx, o, acc.ScrapeInterval, a.drainProgress)
				if !a.cfg.Quiet && isTerminal(a.errOut) {
					fmt.Fprintln(a.errOut)
				}
			} else {
				a.progress("collecting metrics from %s", o.Prometheus)
				res, err = collect.Collect(ctx, o)
			}
			if err != nil {
				return withHint(err, acc.Hint)
			}
			return a.printResult(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RunID, "run", "", "run id (default: the newest run)")
	f.BoolVar(&untilDrained, "until-drained", false, "wait for the run to drain first, with progress on stderr")
	f.StringVar(&o.Out, "out", filepath.Join("raw_data", "metrics"), "root folder")
	f.StringVar(&o.Scenario, "scenario", collect.DefaultScenario, "scenario folder")
	f.StringVar(&o.Name, "folder", "", "run folder (default: <seeds>_seed_<proxies>_proxies, the proxies when the run drained; --name selects the stack)")
	f.DurationVar(&o.Step, "step", 5*time.Second, "resolution of the CSVs and charts")
	f.DurationVar(&o.RateWindow, "rate-window", 30*time.Second, "window of rate() in the panels")
	f.DurationVar(&o.StuckAfter, "stuck-after", time.Minute, "a partition whose lag stays flat and non-zero this long is stuck (scale it with --sim-time-factor)")
	return cmd
}

func (a *app) printResult(res *collect.Result) error {
	return a.printObject(res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n", res.Dir)
		return err
	})
}

// collectArchive collects from what a stack that is not up (notUp says
// why) left on disk, when its provider keeps it (local): a copy of its
// metrics, and its recorded runs. Nothing can drain any more, so
// --until-drained collects at once.
func (a *app) collectArchive(ctx context.Context, o collect.Options, notUp error) error {
	p, err := a.provider()
	if err != nil {
		return err
	}
	ar, ok := p.(cluster.Archiver)
	if !ok {
		return notUp
	}
	arch, closeArchive, err := ar.Archive(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return notUp // never up: nothing on disk
	}
	if err != nil {
		return fmt.Errorf("%w; what it left cannot be read: %w", notUp, err)
	}
	defer closeArchive()
	a.progress("%v", notUp)
	a.progress("collecting from the metrics it left on disk (a copy, served on %s)", arch.Prometheus)
	o.Prometheus, o.API, o.RunsDir = arch.Prometheus, "", arch.RunsDir
	res, err := collect.Collect(ctx, o)
	if err != nil {
		return err
	}
	return a.printResult(res)
}

// withHint adds to err what to do when a cluster's stack does not answer.
func withHint(err error, hint string) error {
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, hint)
}

// drainProgress draws a one-line progress bar on stderr; when stderr is
// not a terminal it prints a plain line every 10 s instead.
func (a *app) drainProgress(p collect.Progress) {
	if a.cfg.Quiet {
		return
	}
	tty := isTerminal(a.errOut)
	if p.Err != nil {
		if a.apiDown {
			return
		}
		a.apiDown = true
		fmt.Fprintf(a.errOut, "\nthe control API does not answer (%v); asking again for up to %v\n", p.Err, collect.MaxUnreachable)
		return
	}
	a.apiDown = false
	if !tty && time.Since(a.lastProgress) < 10*time.Second && p.Run.State != runstate.StateDrained {
		return
	}
	a.lastProgress = time.Now()
	const width = 30
	done := 0
	if p.Partitions > 0 {
		done = width * p.Drained / p.Partitions
	}
	c := p.Run.Counters
	start, end := "\r", " "
	if !tty {
		start, end = "", "\n"
	}
	fmt.Fprintf(a.errOut, "%s[%s%s] %d/%d partitions drained, lag %d, %d/%d URLs done, %s%s", start,
		strings.Repeat("#", done), strings.Repeat(".", width-done), p.Drained, p.Partitions, p.Lag,
		c.Finished(), c.Enqueued, p.Elapsed.Round(time.Second), end)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newLogsCommand(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs <component>",
		Short: "Print a local stack component's log (supervisor, proxy, worker, graph-writer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stack.Dir(a.cfg.Name)
			if err != nil {
				return err
			}
			logs := filepath.Join(dir, "logs")
			files, _ := filepath.Glob(filepath.Join(logs, args[0]+"*.log"))
			if len(files) == 0 {
				return usageErrorf("no log for %q in %s: components are supervisor, proxy, worker, graph-writer", args[0], logs)
			}
			for _, f := range files {
				if err := printLog(cmd, a.out, f, follow && len(files) == 1); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines (one log file)")
	return cmd
}

func printLog(cmd *cobra.Command, out io.Writer, path string, follow bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(out, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}
