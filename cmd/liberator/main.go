// Command liberator takes stateful workloads over from failed Kubernetes
// nodes. Installed as kubectl-liberator it is a kubectl plugin.
package main

import (
	"os"

	"github.com/liberator-dev/liberator/internal/cli"
)

// main exits with the codes of docs/cli.md ("Exit codes").
func main() {
	os.Exit(cli.Main(os.Args, cli.StdStreams()))
}
