// Command liberator takes stateful workloads over from failed Kubernetes
// nodes. Installed as kubectl-liberator it is a kubectl plugin.
package main

import (
	"fmt"
	"os"

	"github.com/liberator-dev/liberator/internal/cli"
)

func main() {
	if err := cli.NewRoot(cli.StdStreams()).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "liberator:", err)
		os.Exit(1)
	}
}
