package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/experiment"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newExperimentCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "Run a matrix of scenarios, repeated, and compare them in one report",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newExperimentRunCommand(a), newExperimentListCommand(a))
	return cmd
}

func newExperimentRunCommand(a *app) *cobra.Command {
	o := experiment.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "run FILE.yaml",
		Short: "Run every scenario of FILE, each repeated, and write the comparison",
		Long: `run reads FILE (unknown keys and bad values are refused with their line,
and every scenario is checked against the budget before anything starts),
then for each scenario and repeat brings a fresh stack up with the
scenario's settings, seeds it, collects the run once it drained into
<out>/<name>/<scenario>/<repeat>/ (csv_data, screenshots, run.json,
summary.md) and takes the stack down. It ends with report.md, report.json
and comparison.png in <out>/<name>/.

Runs already complete are skipped, so a file run again resumes where an
interrupted run stopped (Ctrl-C takes the current stack down and keeps the
finished runs); --force runs them again. The file:

  name: egress_study       # folder under --out
  seeds: 20                # the first N built-in seeds, or seedFile: path
  maxDepth: 3
  simTimeFactor: 10
  repeats: 3
  scenarios:               # a name plus up settings: proxies, proxyAssignment,
    - {name: one_egress, proxies: 1}    # partitions, graphWriters, nodeMemory,
    - {name: three_egress, proxies: 3}  # nodeCPU, profile, simTimeFactor
    - {name: three_egress_hash, proxies: 3, proxyAssignment: hash}`,
		Example: `  crawlctl experiment run experiments/egress_study.yaml
  crawlctl experiment run my.yaml --out /tmp/metrics --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := experiment.Parse(args[0], a.cfg.Input)
			if err != nil {
				return usageError{err}
			}
			switch o.Provider {
			case stack.Local, stack.Kind:
			default:
				return usageErrorf("--provider %q: give local or kind", o.Provider)
			}
			o.Print, o.Log = a.printer(), a.log
			rep, err := experiment.Run(cmd.Context(), f, o)
			if err != nil {
				return err
			}
			return a.printObject(rep, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, filepath.Join(rep.Dir, "report.md"))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", o.Out, "root folder: the experiment goes in <out>/<name>/")
	f.StringVar(&o.Provider, "provider", o.Provider, "local or kind")
	f.BoolVar(&o.Force, "force", false, "run again the runs already complete")
	return cmd
}

func newExperimentListCommand(a *app) *cobra.Command {
	out := experiment.DefaultOptions().Out
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List past experiments with their scenarios and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := experiment.List(out)
			if err != nil {
				return err
			}
			return a.printObject(es, es.WriteTable)
		},
	}
	cmd.Flags().StringVar(&out, "out", out, "root folder")
	return cmd
}
