//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// env is one scenario's cluster, clients and liberator processes.
type env struct {
	*kit.Env
	t      *testing.T
	c      *bed.Cluster
	kube   kubernetes.Interface
	tk     client.Client
	root   string
	saKube string // kubeconfig of liberator's ServiceAccount
	// ctl and ctlConfig are the controller started last and its
	// configuration.
	ctl       *controllerProc
	ctlConfig string
}

// liberatorBinary builds the controller binary once per test run.
func liberatorBinary(t *testing.T, root string) string {
	t.Helper()
	bin, err := kit.Binary(root)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// newEnv starts a cluster and installs liberator's namespace, CRD and RBAC
// from config/ (the controller itself runs as a process on this machine,
// under the ServiceAccount's identity, since kwok pods run no containers).
func newEnv(t *testing.T, opts bed.Options) *env {
	t.Helper()
	if opts.Log == nil {
		opts.Log = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, err := kit.Setup(ctx, opts)
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := k.C.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	return &env{Env: k, t: t, c: k.C, kube: k.Kube, tk: k.TK, root: k.Root, saKube: k.SAKubeconfig}
}

// apply server-side applies every object kustomize builds from dir.
func (e *env) apply(dir string) {
	e.t.Helper()
	if err := e.Apply(context.Background(), dir); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond every 200 ms until it is true, failing the test after
// timeout with what.
func (e *env) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
}

// controllerProc is a liberator controller running as a process.
type controllerProc struct {
	*kit.Controller
	metricsAddr string
}

// startController runs `liberator controller` with the given config file
// content under the ServiceAccount's kubeconfig; it is stopped at cleanup.
func (e *env) startController(name, cfg string, args ...string) *controllerProc {
	e.t.Helper()
	k, err := e.StartController(name, cfg, e.t.TempDir(), args...)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &controllerProc{Controller: k, metricsAddr: k.MetricsAddr}
	e.ctl, e.ctlConfig = p, cfg
	e.t.Cleanup(func() {
		p.Stop()
		if e.t.Failed() {
			e.t.Logf("controller %s log (last lines):\n%s", name, tail(p.LogText(), 60))
		}
	})
	return p
}

func (p *controllerProc) kill()           { p.Kill() }
func (p *controllerProc) logText() string { return p.LogText() }

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// takeovers returns the node's Takeovers, oldest first.
func (e *env) takeovers(node string) []v1alpha1.Takeover {
	l, err := e.Takeovers(context.Background(), node)
	if err != nil {
		e.t.Fatalf("list takeovers: %v", err)
	}
	return l
}

// takeoverIn waits until the node's latest Takeover reaches phase.
func (e *env) takeoverIn(node string, phase v1alpha1.Phase, timeout time.Duration) v1alpha1.Takeover {
	e.t.Helper()
	var got v1alpha1.Takeover
	e.waitFor(fmt.Sprintf("Takeover of %s in phase %s", node, phase), timeout, func() (bool, error) {
		l := e.takeovers(node)
		if len(l) == 0 {
			return false, nil
		}
		got = l[len(l)-1]
		if got.Status.Phase == phase || got.PhaseTime(phase) != nil {
			return true, nil
		}
		return false, fmt.Errorf("phase %s (%s: %s)", got.Status.Phase, got.Status.Reason, got.Status.Message)
	})
	return got
}

func (e *env) pod(ns, name string) (*corev1.Pod, error) {
	return e.kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// readyPod waits until the pod is Ready on a node other than not.
func (e *env) readyPod(ns, name, not string, timeout time.Duration) *corev1.Pod {
	e.t.Helper()
	var got *corev1.Pod
	e.waitFor(fmt.Sprintf("pod %s/%s Ready on a node other than %q", ns, name, not), timeout, func() (bool, error) {
		p, err := e.pod(ns, name)
		if err != nil {
			return false, err
		}
		got = p
		return p.Spec.NodeName != "" && p.Spec.NodeName != not && p.DeletionTimestamp == nil && podReady(p), nil
	})
	return got
}

// timeline prints the Takeover's phases relative to t0, and its downtime
// breakdown.
func timeline(t *testing.T, title string, t0 time.Time, tk v1alpha1.Takeover) string {
	var b bytes.Buffer
	kit.Timeline(&b, title, t0, tk)
	writeBreakdown(&b, t0, tk)
	t.Log(b.String())
	return b.String()
}
