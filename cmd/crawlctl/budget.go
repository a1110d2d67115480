package main

import (
	"github.com/spf13/cobra"
)

func newBudgetCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "Size the crawl stack to the node: requests, limits and replica caps",
		Long: `budget computes how the node's memory is shared: every component's requests
and limits, the remainder left for crawl workers and graph writers, and the
caps that follow (combined replicas, max workers = KEDA maxReplicaCount).
The same plan sizes the charts and the local provider.`,
		Example: `  crawlctl budget
  crawlctl budget --profile reference --proxies 4 -o json
  crawlctl budget --node-memory 16Gi --worker-memory-limit 96Mi`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := a.plan()
			if err != nil {
				return err
			}
			return a.printObject(p, p.WriteTable)
		},
	}
	addBudgetFlags(cmd)
	return cmd
}
