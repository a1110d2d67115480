package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// notYet is the error of a command this build does not have yet: it says so
// and exits non-zero rather than pretend.
func notYet(cmd *cobra.Command, what string) error {
	return fmt.Errorf("%s is not available in this build yet: %s is still being built; "+
		"see `crawlctl --help` for what works today", cmd.CommandPath(), what)
}

func stub(use, short, what string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short + " (not available yet)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return notYet(cmd, what) },
	}
}
