package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// notYet is the error of a command this build does not have yet: it says so
// and exits non-zero rather than pretend.
func notYet(cmd *cobra.Command, what string) error {
	return fmt.Errorf("%s is not available in this build yet: %s is still being built; "+
		"`crawlctl budget` works today", cmd.CommandPath(), what)
}

func stub(use, short, what string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short + " (not available yet)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return notYet(cmd, what) },
	}
}

func newUpCommand(*app) *cobra.Command {
	cmd := stub("up", "Bring the crawl stack up (local processes, or a Kind cluster when Docker answers)", "the local provider")
	addBudgetFlags(cmd)
	return cmd
}

func newDownCommand(*app) *cobra.Command {
	return stub("down", "Stop the crawl stack", "the local provider")
}

func newStatusCommand(*app) *cobra.Command {
	return stub("status", "Show components, replicas, frontier lag and run progress", "the local provider")
}

func newSeedCommand(*app) *cobra.Command {
	return stub("seed", "Start a crawl run from seeds", "the control API")
}

func newCollectCommand(*app) *cobra.Command {
	return stub("collect", "Snapshot a run's metrics into raw_data/metrics/<scenario>/<run>/", "metrics collection")
}
