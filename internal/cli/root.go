// Package cli holds liberator's commands. Each takes IOStreams so it can be
// tested without a terminal.
package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// StdStreams returns the process's streams.
func StdStreams() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// NewRoot builds the liberator command tree.
func NewRoot(s IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "liberator",
		Short: "Take stateful workloads over from failed Kubernetes nodes, fast and without split brain",
		Long: `liberator takes stateful workloads (a MySQL StatefulSet, an iSCSI-backed
Deployment) over from a failed Kubernetes node: it detects the failure, proves
the node is off (fencing), releases its pods and volumes, and watches them come
back Ready on a healthy node.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          rootArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.ErrOut)
	root.AddCommand(newControllerCommand(s), newAgentCommand(s), newConfigCommand(s), newVersionCommand(s))
	addOperatorCommands(root, s)
	markUsageErrors(root)
	return root
}
