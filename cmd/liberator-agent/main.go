// Command liberator-agent is the liberator agent alone: the same command as
// `liberator agent` (internal/agent/agentcmd), in a binary that links
// nothing of the controller, so that the agent on every node stays small
// (its resident memory is mostly the pages of its binary). The image carries
// it as /liberator-agent beside /liberator; the agent DaemonSet runs it.
//
//	liberator-agent --peer-key-file=/etc/liberator/peer/key
//
// A first argument "agent" is accepted and ignored, so that a command line
// written for `liberator agent` works unchanged.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/liberator-dev/liberator/internal/agent/agentcmd"
)

// Build information, set with -ldflags -X main.Version=... (Makefile,
// Dockerfile).
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

func main() {
	if err := newCommand(os.Stderr, os.Args[1:]).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "liberator-agent:", err)
		os.Exit(1)
	}
}

// newCommand is the agent command as this binary's root. No custom help or
// version template: a template calling methods would keep every exported
// method in the binary (the linker's dead code elimination gives up), which
// is most of the footprint saved.
func newCommand(errOut io.Writer, args []string) *cobra.Command {
	cmd := agentcmd.New(errOut, Version)
	cmd.Use = "liberator-agent"
	cmd.Version = fmt.Sprintf("%s (commit %s, built %s, %s)", Version, Commit, Date, runtime.Version())
	cmd.SilenceUsage, cmd.SilenceErrors = true, true // as `liberator`: one line
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	cmd.SetArgs(args)
	return cmd
}
