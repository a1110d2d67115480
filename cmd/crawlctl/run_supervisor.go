package main

// The local provider's supervisor, that provider's own process.

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/cluster"
)

func newRunSupervisorCommand(a *app) *cobra.Command {
	var (
		dir          string
		readyTimeout time.Duration
	)
	cmd := runtimeCommand(a, "supervisor", "Local provider supervisor (started by crawlctl up)",
		func(ctx context.Context, log *slog.Logger) error {
			if dir == "" {
				return usageErrorf("--state-dir is required (crawlctl up passes it)")
			}
			return cluster.RunSupervisor(ctx, dir, readyTimeout, log)
		})
	cmd.Flags().StringVar(&dir, "state-dir", "", "the stack's state directory (spec.json in, state.json and logs out)")
	cmd.Flags().DurationVar(&readyTimeout, "ready-timeout", 0, "how long children get to answer /readyz, at start and after a reload (up passes its --timeout; default 1m)")
	return cmd
}
