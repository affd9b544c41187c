package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/liberator-dev/liberator/internal/controller/app"
)

func newControllerCommand(s IOStreams) *cobra.Command {
	o := &app.Options{}
	check := false
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the takeover controller",
		Long: `Run the takeover controller. It watches Nodes, their Leases, Pods and
VolumeAttachments; when a node has been unhealthy for the whole unhealthyAfter
window it fences the node, releases its stateful pods and records the incident
as a Takeover. Flags override the config file.`,
		Example: `  # in the cluster (see config/manager)
  liberator controller --config=/etc/liberator/config.yaml

  # check a config file (and flags) without starting
  liberator controller --config=config.yaml --check

  # from a workstation, dry run
  liberator controller --kubeconfig ~/.kube/config --dry-run --leader-elect=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.Load(cmd.Flags())
			if err != nil {
				return err
			}
			if check {
				name := o.ConfigPath
				if name == "" {
					name = "(defaults)"
				}
				_, err := fmt.Fprintf(s.Out, "config %s: ok\n", name)
				return err
			}
			o.Version, o.Revision, o.LogOutput = Version, Commit, s.ErrOut
			return app.Run(cmd.Context(), o, cfg)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&check, "check", false, "check the configuration (the file and the flags) and exit, without a cluster: 0 and \"config FILE: ok\" when it is valid")
	return cmd
}
