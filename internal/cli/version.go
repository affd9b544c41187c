package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Build information, set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

func newVersionCommand(s IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  liberator version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(s.Out, "liberator %s (commit %s, built %s, %s)\n", Version, Commit, Date, runtime.Version())
			return err
		},
	}
}
