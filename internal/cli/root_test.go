package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// Every command has an example in its help, and the operator commands
// take the kubeconfig flags.
func TestHelpHasExamples(t *testing.T) {
	root := NewRoot(IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, name := range []string{"controller", "version", "status", "evacuate", "readmit", "join-command", "drill"} {
		out, _, err := run(t, name, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v", name, err)
		}
		if !strings.Contains(out, "Examples:\n") {
			t.Errorf("%s --help has no example:\n%s", name, out)
		}
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("command %s not found: %v", name, err)
		}
		for _, f := range []string{"kubeconfig", "context"} {
			if lookupFlag(cmd, f) == nil {
				t.Errorf("%s has no --%s", name, f)
			}
		}
	}
}

// The commands' earlier names still work: scripts use them.
func TestEarlierNamesAreAliases(t *testing.T) {
	root := NewRoot(IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for alias, name := range map[string]string{"takeover": "evacuate", "release": "readmit"} {
		cmd, _, err := root.Find([]string{alias, "w1"})
		if err != nil {
			t.Errorf("%s: %v", alias, err)
		} else if cmd.Name() != name {
			t.Errorf("%s runs %s, want %s", alias, cmd.Name(), name)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, "liberator") {
			t.Errorf("completion %s: %v (%d bytes)", shell, err, len(out))
		}
	}
	// Flag values complete too.
	out, _, err := run(t, "__complete", "status", "-o", "")
	if err != nil || !strings.Contains(out, "wide\njson\nyaml\n") {
		t.Errorf("completion of status -o: %v\n%s", err, out)
	}
}

func TestMissingKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("HOME", t.TempDir())
	_, _, err := run(t, "status")
	if err == nil || err.Error() != "no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config" {
		t.Errorf("status without a kubeconfig: %v", err)
	}
	_, _, err = run(t, "--kubeconfig", filepath.Join(t.TempDir(), "nope"), "readmit", "w1")
	if err == nil || !strings.Contains(err.Error(), "nope") || strings.Contains(err.Error(), "\n") {
		t.Errorf("readmit with a missing kubeconfig file: %v", err)
	}
}

func TestBadInputIsOneLine(t *testing.T) {
	t.Setenv(SimulateCommandEnv, "")
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	// A reachable-looking cluster that is not there: argument errors must
	// come before any connection.
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"evacuate"},
		{"evacuate", "w1", "--timeout", "0s"},
		{"takeover", "w1", "--timeout", "0s"},
		{"status", "-o", "xml"},
		{"drill", "w1", "--simulate"},
		{"drill", "w1", "--simulate-command", "true"},
		{"join-command", "--ttl", "-1h"},
	} {
		_, _, err := run(t, append([]string{"--kubeconfig", kc}, args...)...)
		if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v: want a one-line argument error, got %v", args, err)
		}
	}
}
