package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://file.example:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: from-file}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: from-context}
current-context: ctx
`

// Every operator command takes kubectl's standard flags, and the REST
// config the commands talk to the cluster with carries them.
func TestKubeFlagsReachTheRestConfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	root := NewRoot(IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, name := range []string{"status", "evacuate", "readmit", "join-command", "drill"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"kubeconfig", "context", "cluster", "user", "namespace", "server", "token",
			"as", "as-group", "as-uid", "request-timeout", "certificate-authority", "client-certificate",
			"client-key", "insecure-skip-tls-verify", "tls-server-name"} {
			if lookupFlag(cmd, f) == nil {
				t.Errorf("%s has no --%s", name, f)
			}
		}
	}
	// The controller has its own --kubeconfig and --context, and no
	// operator flags it would ignore.
	ctrl, _, _ := root.Find([]string{"controller"})
	if lookupFlag(ctrl, "as") != nil {
		t.Error("controller takes --as, which it would ignore")
	}

	k := newKubeFlags()
	cmd := &cobra.Command{Use: "x"}
	k.addRootFlags(cmd, []*cobra.Command{cmd})
	if err := cmd.ParseFlags([]string{"--kubeconfig", kc, "--as", "alice", "--as-group", "ops", "--as-group", "sre",
		"--token", "T0K", "--server", "https://flag.example:8443", "--request-timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	rc, err := k.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://flag.example:8443" || rc.BearerToken != "T0K" || rc.Timeout != 7*time.Second ||
		rc.Impersonate.UserName != "alice" || len(rc.Impersonate.Groups) != 2 || rc.Impersonate.Groups[1] != "sre" {
		t.Errorf("rest config: host %q token %q timeout %s impersonate %+v; want the flags' values",
			rc.Host, rc.BearerToken, rc.Timeout, rc.Impersonate)
	}
	if _, err := k.clients(); err != nil {
		t.Errorf("clients: %v", err)
	}

	// The command talks to --server: nothing listens on port 1, so the
	// command cannot run (exit 3), naming that address.
	out, errOut, code := runMain(t, "liberator", "--kubeconfig", kc, "status", "--server", "https://127.0.0.1:1", "--request-timeout", "5s")
	if code != ExitCannotRun || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("status --server https://127.0.0.1:1: exit %d, stdout %q, stderr %q; want exit %d naming the address", code, out, errOut, ExitCannotRun)
	}
}

// lookupFlag finds a flag cmd takes: its own, persistent or inherited.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()} {
		if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// -A lists every namespace, whatever -n says.
func TestAllNamespaces(t *testing.T) {
	root := NewRoot(IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	st, _, _ := root.Find([]string{"status"})
	if f := st.Flags().ShorthandLookup("A"); f == nil || f.Name != "all-namespaces" {
		t.Fatalf("status has no -A/--all-namespaces")
	}
	k := newKubeFlags()
	cmd := &cobra.Command{Use: "x"}
	k.addRootFlags(cmd, []*cobra.Command{cmd})
	k.addAllNamespacesFlag(cmd)
	if err := cmd.ParseFlags([]string{"-n", "shop"}); err != nil {
		t.Fatal(err)
	}
	if got := k.namespace(); got != "shop" {
		t.Errorf("-n shop: namespace %q", got)
	}
	if err := cmd.ParseFlags([]string{"-A"}); err != nil {
		t.Fatal(err)
	}
	if got := k.namespace(); got != "" {
		t.Errorf("-n shop -A: namespace %q, want all (\"\")", got)
	}
}
