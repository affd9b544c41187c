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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// TestChartInstall installs the Helm chart for real, with helm, on the
// bed's API server:
//   - `helm install -n liberator-other --create-namespace` puts every
//     namespaced object in the release's namespace (the controller config's
//     leader election namespace included) and creates no Namespace of its
//     own;
//   - a release laid out as earlier charts did (Helm's record in default,
//     liberator in tkr-system, created by the chart) is refused an upgrade
//     that would move liberator to the release's namespace (and delete
//     tkr-system), with the line that says how to keep it; with that line
//     followed, the upgrade goes through and tkr-system stays.
func TestChartInstall(t *testing.T) {
	t.Parallel()
	root, err := bed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "hack/tools/manifest-tools.sh")).Output()
	if err != nil {
		t.Fatalf("hack/tools/manifest-tools.sh (builds helm): %v", err)
	}
	helmBin := filepath.Join(strings.TrimSpace(lastLine(string(out))), "helm")
	chart := filepath.Join(root, "charts/liberator")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c, err := bed.Start(ctx, bed.Options{Workers: 1, Log: t.Logf})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	kube := c.Client()
	home := t.TempDir()
	helm := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, helmBin, append(args, "--kubeconfig", c.Kubeconfig())...)
		cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	// The release's namespace.
	start := time.Now()
	if out, err := helm("install", "liberator", chart, "-n", "liberator-other", "--create-namespace"); err != nil {
		t.Fatalf("helm install -n liberator-other --create-namespace: %v\n%s", err, out)
	}
	t.Logf("helm install -n liberator-other --create-namespace: %v", time.Since(start).Round(time.Millisecond))
	for _, name := range []string{"liberator"} {
		if _, err := kube.CoreV1().ServiceAccounts("liberator-other").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ServiceAccount liberator-other/%s: %v", name, err)
		}
	}
	if _, err := kube.AppsV1().Deployments("liberator-other").Get(ctx, "liberator-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("Deployment liberator-other/liberator-controller: %v", err)
	}
	for _, name := range []string{"liberator-leader-election", "liberator-fence-credentials"} {
		if _, err := kube.RbacV1().Roles("liberator-other").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("Role liberator-other/%s: %v", name, err)
		}
	}
	cm, err := kube.CoreV1().ConfigMaps("liberator-other").Get(ctx, "liberator-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap liberator-other/liberator-config: %v", err)
	}
	var cfg struct {
		LeaderElection struct {
			Namespace string `json:"namespace"`
		} `json:"leaderElection"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.LeaderElection.Namespace != "liberator-other" {
		t.Errorf("the controller config's leaderElection.namespace is %q, want liberator-other", cfg.LeaderElection.Namespace)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctx, "tkr-system", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace tkr-system: %v; want none: the release went to liberator-other", err)
	}
	if out, err := helm("uninstall", "liberator", "-n", "liberator-other", "--wait"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}

	// A release as earlier charts made it, then upgraded with the new
	// defaults.
	if out, err := helm("install", "liberator", chart, "-n", "default", "--set", "namespace.name=tkr-system", "--set", "namespace.create=true"); err != nil {
		t.Fatalf("helm install (the earlier layout): %v\n%s", err, out)
	}
	// With values of its own (-f my-values.yaml, --set), helm upgrade
	// starts from the chart's defaults, namespace.name empty among them;
	// without any it would reuse the release's.
	refused, err := helm("upgrade", "liberator", chart, "-n", "default", "--set", "replicas=1")
	t.Logf("helm upgrade with namespace.name empty: %v\n%s", err, refused)
	want := "namespace.name: this release runs liberator in tkr-system, not in the release's namespace default; keep it there with --set namespace.name=tkr-system --set namespace.create=true"
	if err == nil || !strings.Contains(refused, want) {
		t.Errorf("helm upgrade that would move liberator out of tkr-system: err %v, output %q; want a refusal saying %q", err, refused, want)
	}
	if _, err := kube.CoreV1().ConfigMaps("tkr-system").Get(ctx, "liberator-config", metav1.GetOptions{}); err != nil {
		t.Errorf("after the refused upgrade: ConfigMap tkr-system/liberator-config: %v", err)
	}
	if out, err := helm("upgrade", "liberator", chart, "-n", "default", "--set", "replicas=1", "--set", "namespace.name=tkr-system", "--set", "namespace.create=true"); err != nil {
		t.Errorf("helm upgrade keeping tkr-system: %v\n%s", err, out)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctx, "tkr-system", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace tkr-system after the upgrade that keeps it: %v", err)
	}
	if _, err := kube.CoreV1().ConfigMaps("default").Get(ctx, "liberator-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap default/liberator-config: %v; want none", err)
	}
}
