package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/version"
)

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := version.Get()
			return a.printObject(info, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "crawlctl %s (commit %s, built %s, %s)\n", info.Version, info.Commit, info.Date, info.GoVersion)
				return err
			})
		},
	}
}
