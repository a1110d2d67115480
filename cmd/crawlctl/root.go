package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/config"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the operation failed
	exitUsage = 2 // bad input: flags, arguments, configuration
)

// usageError is bad input from the user; it exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), budget.IsInputError(err), stack.IsUsage(err):
		return exitUsage
	default:
		return exitError
	}
}

// app is what every command shares: the streams, the effective
// configuration and the logger. It is filled before a command runs.
type app struct {
	out, errOut io.Writer
	viper       *viper.Viper
	cfg         config.Config
	log         *slog.Logger
	// lastProgress is when a non-terminal progress line was last printed.
	lastProgress time.Time
	// apiDown is set while WaitDrained reports the control API silent,
	// so that the streak prints one line.
	apiDown bool
}

// newRootCommand builds the command tree writing to out and errOut.
func newRootCommand(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "crawlctl",
		Short: "Run distributed-crawl experiments on a laptop-sized cluster",
		Long: `crawlctl provisions a single-node cluster sized to a memory budget, installs
the crawl stack (Kafka frontier, crawl workers, egress proxies, graph writer,
browser grid, metrics), seeds crawl runs and collects metrics snapshots.
Without Docker the same stack runs as local processes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Arbitrary args so an unknown command reaches RunE, which reports it
		// as a usage error with suggestions.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load(cmd)
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	config.AddGlobalFlags(root.PersistentFlags())
	root.PersistentFlags().String("config", "", "config file (default $XDG_CONFIG_HOME/crawlctl/config.yaml or ~/.config/crawlctl/config.yaml; env CRAWLCTL_CONFIG)")

	root.AddCommand(
		newBudgetCommand(a),
		newConfigCommand(a),
		newVersionCommand(a),
		newUpCommand(a),
		newDownCommand(a),
		newStatusCommand(a),
		newSeedCommand(a),
		newCollectCommand(a),
		newExperimentCommand(a),
		newLogsCommand(a),
		newRunCommand(a),
	)
	return root
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErrorf("%s (see '%s --help')", msg, cmd.CommandPath())
}

// renamedFlags says where the meanings --name had on some commands went.
var renamedFlags = map[string]string{
	"seed":    "; the run's own name is --run-name",
	"collect": "; the snapshot's folder is --folder",
}

// load reads the configuration for the command about to run.
func (a *app) load(cmd *cobra.Command) error {
	a.viper = config.NewViper()
	if err := config.BindFlags(a.viper, cmd.Flags()); err != nil {
		return err
	}
	file, _ := cmd.Flags().GetString("config")
	if !cmd.Flags().Changed("config") {
		file = os.Getenv(config.EnvPrefix + "_CONFIG")
	}
	if err := config.ReadFile(a.viper, file); err != nil {
		return usageError{err}
	}
	cfg, err := config.Unmarshal(a.viper)
	if err != nil {
		return usageError{err}
	}
	switch cfg.Output {
	case "table", "json", "yaml":
	default:
		return usageErrorf("output %q is not a format: use table, json or yaml", cfg.Output)
	}
	if err := config.ValidateName(cfg.Name); err != nil {
		return usageError{fmt.Errorf("%w%s", err, renamedFlags[cmd.Name()])}
	}
	a.cfg = cfg
	a.log = newLogger(a.errOut, cfg.Verbose, cfg.Quiet)
	return nil
}

func newLogger(w io.Writer, verbose int, quiet bool) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case quiet:
		level = slog.LevelError
	case verbose == 1:
		level = slog.LevelInfo
	case verbose > 1:
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// addBudgetFlags gives cmd the budget flags.
func addBudgetFlags(cmd *cobra.Command) {
	config.AddBudgetFlags(cmd.Flags())
	cmd.Flags().SortFlags = false
}

// plan computes the budget plan from the effective configuration.
func (a *app) plan() (*budget.Plan, error) {
	return budget.Compute(a.cfg.Input)
}
