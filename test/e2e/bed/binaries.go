package bed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ToolsBinEnv names the environment variable that, when set, points at a
// directory holding the test-bed binaries; Binaries then builds nothing.
const ToolsBinEnv = "LIBERATOR_TOOLS_BIN"

// requiredBinaries are the programs Start runs from the binary directory.
var requiredBinaries = []string{
	"etcd",
	"kube-apiserver",
	"kube-controller-manager",
	"kube-scheduler",
	"kwok",
	"kwokctl",
}

// Binaries returns the directory holding the pinned test-bed binaries. It
// honors LIBERATOR_TOOLS_BIN; otherwise it runs hack/tools/build.sh of the
// repository containing the working directory (which builds only what is not
// cached yet) and streams the script's progress to logf.
func Binaries(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	if dir := os.Getenv(ToolsBinEnv); dir != "" {
		if err := checkBinaries(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", ToolsBinEnv, dir, err)
		}
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(stateRoot(), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", stateRoot(), err)
	}
	// Two test binaries building at once would race on the same outputs.
	unlock, err := lockFile(filepath.Join(stateRoot(), "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	script := filepath.Join(root, "hack", "tools", "build.sh")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	var tail []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		logf("%s", line)
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("%s failed: %w\n%s", script, err, strings.Join(tail, "\n"))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no binary directory", script)
	}
	if err := checkBinaries(dir); err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	return dir, nil
}

// RepoRoot walks up from the working directory to the directory holding both
// go.mod and hack/tools/build.sh.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "hack", "tools", "build.sh")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repository root: no go.mod with hack/tools/build.sh above %s", wd)
		}
	}
}

func checkBinaries(dir string) error {
	var errs []error
	for _, name := range requiredBinaries {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, err)
		case st.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s is not executable", p))
		}
	}
	return errors.Join(errs...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
