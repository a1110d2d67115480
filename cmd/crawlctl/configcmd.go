package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/config"
)

func newConfigCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show crawlctl's configuration",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	view := &cobra.Command{
		Use:   "view",
		Short: "Print the effective configuration (flags > CRAWLCTL_ env > config file > defaults)",
		Long: `view prints the configuration crawlctl would use, after flags, CRAWLCTL_
environment variables (key in upper case, '.' and '-' as '_', e.g.
CRAWLCTL_SIZES_PROXY_MEMORY_LIMIT) and the config file. Its YAML output is a
valid config file.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.printObject(a.cfg, func(w io.Writer) error {
				if f := a.viper.ConfigFileUsed(); f != "" {
					fmt.Fprintf(w, "# config file: %s\n", f)
				} else {
					fmt.Fprintf(w, "# config file: none (looked for %s)\n", config.DefaultFile())
				}
				b, err := yaml.Marshal(a.cfg)
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			})
		},
	}
	addBudgetFlags(view)
	cmd.AddCommand(view)
	return cmd
}
