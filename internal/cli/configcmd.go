package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/liberator-dev/liberator/internal/config"
)

func newConfigCommand(s IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check controller configuration files",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newConfigValidateCommand(s))
	return cmd
}

func newConfigValidateCommand(s IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check controller config files without a cluster",
		Long: `Check controller config files as the controller would when it starts, and
touch no cluster. A FILE is a ControllerConfig, or a ConfigMap manifest that
holds one under data.config.yaml (the ConfigMap liberator-config, before it
is applied). Each valid file prints "config FILE: ok"; each refused one its
problems, naming the line and the field. The exit status is 0 when every
file is valid and 1 otherwise.`,
		Example: `  # before kubectl apply
  liberator config validate config/manager/config.yaml

  # a ConfigMap manifest, as CI renders it
  kubectl create configmap liberator-config -n tkr-system --from-file=config.yaml --dry-run=client -o yaml > cm.yaml
  liberator config validate cm.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			refused := 0
			var last error
			for _, f := range files {
				err := config.Check(f)
				if err == nil {
					fmt.Fprintf(s.Out, "config %s: ok\n", f)
					continue
				}
				refused++
				if last = err; len(files) > 1 {
					fmt.Fprintln(s.ErrOut, err)
				}
			}
			switch {
			case refused == 0:
				return nil
			case len(files) == 1:
				return last
			}
			return fmt.Errorf("%d of %d config files refused", refused, len(files))
		},
	}
}
