package cli

import (
	"github.com/spf13/cobra"

	"github.com/liberator-dev/liberator/internal/agent/agentcmd"
)

// newAgentCommand is the node agent (internal/agent/agentcmd).
func newAgentCommand(s IOStreams) *cobra.Command { return agentcmd.New(s.ErrOut, Version) }
