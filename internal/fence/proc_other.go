//go:build !unix

package fence

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; the
// context still kills the agent itself.
func setProcessGroup(*exec.Cmd) {}
