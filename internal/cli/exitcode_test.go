package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Each kind of failure maps to its exit code: a drill that timed out is a
// goal not met, a bad kubeconfig or an unreachable API server is a command
// that could not run.
func TestExitCodeMapping(t *testing.T) {
	gr := schema.GroupResource{Resource: "nodes"}
	refused := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/api/v1/nodes",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"drill timed out", goalNotMet(fmt.Errorf("drill of w1 incomplete: timed out after 10m0s")), ExitGoalNotMet},
		{"drill timed out, wrapped", fmt.Errorf("x: %w", goalNotMet(errors.New("timed out"))), ExitGoalNotMet},
		{"unclassified failure", errors.New("node w1 is not Ready"), ExitGoalNotMet},
		{"bad flag value", usageErrorf("--timeout must be positive"), ExitUsage},
		{"kubeconfig", cannotRun(errors.New("no kubeconfig found")), ExitCannotRun},
		{"forbidden", apiError("list nodes", apierrors.NewForbidden(gr, "", errors.New("no"))), ExitCannotRun},
		{"unauthorized", apiError("list nodes", apierrors.NewUnauthorized("who")), ExitCannotRun},
		{"unreachable", apiError("list nodes", refused), ExitCannotRun},
		{"API server unavailable", apiError("list nodes", apierrors.NewServiceUnavailable("down")), ExitCannotRun},
		{"not found is no access problem", apiError("get node", apierrors.NewNotFound(gr, "w9")), ExitGoalNotMet},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

// Main runs the command line and returns the exit code; errors are one
// line on standard error.
func TestMainExitCodes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-kubeconfig")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nMaxConcurrent: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"version"}, ExitOK, ""},
		{[]string{"no-such-command"}, ExitUsage, `unknown command "no-such-command"`},
		{[]string{"status", "--no-such-flag"}, ExitUsage, "unknown flag: --no-such-flag"},
		{[]string{"status", "a", "b"}, ExitUsage, "accepts at most 1 arg"},
		{[]string{"status", "-o", "toml"}, ExitUsage, `unknown output format "toml"`},
		{[]string{"evacuate", "w1", "--timeout", "0s"}, ExitUsage, "--timeout must be positive"},
		{[]string{"status", "--request-timeout", "soon"}, ExitUsage, `--request-timeout "soon"`},
		{[]string{"config", "validate"}, ExitUsage, "requires at least 1 arg"},
		{[]string{"config", "validate", bad}, ExitGoalNotMet, "bad.yaml"},
		{[]string{"status", "--kubeconfig", empty}, ExitCannotRun, "no kubeconfig found"},
		{[]string{"status", "--kubeconfig", filepath.Join(dir, "missing")}, ExitCannotRun, "kubeconfig"},
	} {
		var out, errOut bytes.Buffer
		got := Main(append([]string{"liberator"}, tc.args...), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if got != tc.want {
			t.Errorf("liberator %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), got, tc.want, errOut.String())
		}
		if tc.msg != "" && (!strings.HasPrefix(errOut.String(), "liberator: ") || !strings.Contains(errOut.String(), tc.msg)) {
			t.Errorf("liberator %s: stderr %q, want a line starting \"liberator: \" with %q", strings.Join(tc.args, " "), errOut.String(), tc.msg)
		}
	}
}
