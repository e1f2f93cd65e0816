package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sdss/fliswarm/pkg/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or print the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and report every problem with its path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: valid (%s layout, observatory %s, %d enabled nodes, revision %s)\n",
				l.Source, l.Layout, l.Spec.Observatory, len(l.Spec.EnabledNodes), l.Revision)
			return nil
		},
	}, &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (defaults and overrides applied) as YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			b, err := config.Show(l.Spec)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	})
	return cmd
}
