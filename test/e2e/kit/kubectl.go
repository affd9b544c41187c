package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoKubectl is returned by Kubectl when the pinned kubectl is not in
// the bed's binary directory.
var ErrNoKubectl = errors.New("no kubectl among the test-bed binaries (hack/tools/build.sh builds it)")

// KubectlPath returns the pinned kubectl built by hack/tools/build.sh with
// the other test-bed binaries, or ErrNoKubectl.
func (e *Env) KubectlPath() (string, error) {
	p := filepath.Join(e.C.BinDir(), "kubectl")
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s", ErrNoKubectl, p)
	}
	return p, nil
}

// Kubectl runs the pinned kubectl with the cluster-admin kubeconfig and
// returns its standard output; on a non-zero exit the error holds the exit
// status and the standard error.
func (e *Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	bin, err := e.KubectlPath()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.C.Kubeconfig()}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=", "KUBECTL_INTERACTIVE_DELETE=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
