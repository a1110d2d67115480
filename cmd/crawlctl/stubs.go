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

// components are the runtimes `crawlctl run` will host.
var components = []struct{ name, short string }{
	{"worker", "Crawl worker: consumes the frontier, fetches through the egress pool"},
	{"graph-writer", "Graph writer: stores results and edges"},
	{"proxy", "Egress proxy: HTTP forward proxy with one egress address"},
	{"api", "Control API: runs, seeds, consumer lag metrics"},
	{"olsim", "Open Library simulator"},
	{"grid", "Browser grid proxy (WebSocket)"},
	{"browser", "Browser worker: a supervised Playwright browser server"},
	{"supervisor", "Local provider supervisor"},
}

func newRunCommand(*app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run <component>",
		Short: "Run one component of the crawl stack in the foreground",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
	}
	for _, c := range components {
		cmd.AddCommand(stub(c.name, c.short, "the "+c.name+" runtime"))
	}
	return cmd
}
