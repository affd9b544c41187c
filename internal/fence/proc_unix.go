//go:build unix

package fence

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the agent in its own process group and makes the
// context's cancellation kill the whole group, so that a helper the agent
// started (ipmitool, ssh, curl) does not outlive it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
