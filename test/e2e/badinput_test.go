//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// The controller refuses to start, with one line naming what is wrong and
// how to fix it, on a bad config, missing RBAC, or a missing CRD.
func TestControllerRefusesToStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 1})
	ctx := context.Background()
	run := func(kubeconfig, cfg string) (string, error) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, liberatorBinary(t, e.root), "controller", "--kubeconfig", kubeconfig, "--config", path,
			"--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0").CombinedOutput()
		return string(out), err
	}
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}
	cases := []struct {
		name, kubeconfig, cfg, want string
	}{
		{"bad config", e.saKube, labConfig("releaseStrategy: Reboot\n"),
			`releaseStrategy: invalid value "Reboot": must be one of OutOfServiceTaint, DeleteNode, ForceDelete`},
		{"negative duration", e.saKube, labConfig("unhealthyAfter: -5s\n"),
			`unhealthyAfter: invalid value "-5s": must be a positive duration`},
		{"unknown field", e.saKube, labConfig("unhealthyAftr: 5s\n"), `unknown field "unhealthyAftr"`},
		{"key in the wrong case", e.saKube, labConfig("MaxConcurrent: 4\n"), `line 8: unknown field "MaxConcurrent" (did you mean "maxConcurrent"?)`},
		{"empty file", e.saKube, "", `: the file is empty`},
		{"second document", e.saKube, labConfig("---\n") + labConfig(""), `line 8: a second YAML document`},
	}
	// An identity without liberator's RBAC: the default ServiceAccount.
	noRBAC, err := e.c.ServiceAccountKubeconfig(ctx, "default", "default")
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct{ name, kubeconfig, cfg, want string }{"RBAC missing", noRBAC, labConfig(""),
		"RBAC forbids what the controller needs: get nodes cluster-wide"})
	for _, tc := range cases {
		out, err := run(tc.kubeconfig, tc.cfg)
		if err == nil {
			t.Fatalf("%s: the controller started; output:\n%s", tc.name, out)
		}
		if l := lastLine(out); !strings.HasPrefix(l, "liberator: ") || !strings.Contains(l, tc.want) {
			t.Fatalf("%s: last line %q, want one line containing %q", tc.name, l, tc.want)
		}
		t.Logf("%s: %s", tc.name, lastLine(out))
	}
	// The CRD removed: the controller says to install it.
	if err := e.Dyn.Resource(crdGVR).Delete(ctx, "takeovers.liberator.dev", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the Takeover API to go away", time.Minute, func() (bool, error) {
		_, err := e.kube.Discovery().ServerResourcesForGroupVersion("liberator.dev/v1alpha1")
		return err != nil, nil
	})
	out, err := run(e.saKube, labConfig(""))
	if l := lastLine(out); err == nil || !strings.Contains(l, "the Takeover CRD (takeovers.liberator.dev) is not installed") {
		t.Fatalf("CRD missing: err %v, last line %q", err, l)
	}
	t.Logf("CRD missing: %s", lastLine(out))
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
