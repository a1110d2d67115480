package main

// The local provider's supervisor: the one command that reaches a provider
// package directly, as it is that provider's own process.

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/cluster/local"
)

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
