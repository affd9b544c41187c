//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// env is one scenario's cluster, clients and liberator processes.
type env struct {
	t      *testing.T
	c      *bed.Cluster
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	tk     client.Client
	root   string
	saKube string // kubeconfig of liberator's ServiceAccount
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// liberatorBinary builds the controller binary once per test run.
func liberatorBinary(t *testing.T, root string) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liberator-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "liberator")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/liberator")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build liberator: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// newEnv starts a cluster and installs liberator's namespace, CRD and RBAC
// from config/ (the controller itself runs as a process on this machine,
// under the ServiceAccount's identity, since kwok pods run no containers).
func newEnv(t *testing.T, opts bed.Options) *env {
	t.Helper()
	root, err := bed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := bed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	rc := c.RESTConfig()
	e := &env{t: t, c: c, kube: c.Client(), root: root}
	e.dyn, err = dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	e.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(e.kube.Discovery()))
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	e.tk, err = client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"config/namespace", "config/crd", "config/rbac"} {
		e.apply(dir)
	}
	e.saKube, err = c.ServiceAccountKubeconfig(context.Background(), "tkr-system", "liberator")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// build runs kustomize on a directory of the repository.
func (e *env) build(dir string) []*unstructured.Unstructured {
	e.t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(e.root, dir))
	if err != nil {
		e.t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

// apply server-side applies every object kustomize builds from dir, CRDs
// first, and waits for CRDs to be served.
func (e *env) apply(dir string) {
	e.t.Helper()
	objs := e.build(dir)
	sort.SliceStable(objs, func(i, j int) bool {
		return objs[i].GetKind() == "CustomResourceDefinition" && objs[j].GetKind() != "CustomResourceDefinition"
	})
	ctx := context.Background()
	for _, o := range objs {
		if err := e.applyObject(ctx, o); err != nil {
			e.t.Fatalf("apply %s %s from %s: %v", o.GetKind(), o.GetName(), dir, err)
		}
	}
}

func (e *env) applyObject(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	var mapping *meta.RESTMapping
	err := retry(30*time.Second, func() error {
		var err error
		mapping, err = e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			e.mapper.Reset()
		}
		return err
	})
	if err != nil {
		return err
	}
	data, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = e.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		ri = e.dyn.Resource(mapping.Resource).Namespace(ns)
	}
	force := true
	return retry(30*time.Second, func() error {
		_, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "liberator-e2e", Force: &force})
		return err
	})
}

func retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
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
	name        string
	metricsAddr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startController runs `liberator controller` with the given config file
// content under the ServiceAccount's kubeconfig; it is stopped at cleanup.
func (e *env) startController(name, cfg string, args ...string) *controllerProc {
	e.t.Helper()
	dir := e.t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	metricsAddr := freeAddr(e.t)
	all := append([]string{"controller", "--kubeconfig", e.saKube, "--config", cfgPath,
		"--metrics-addr", metricsAddr, "--health-addr", freeAddr(e.t), "--v", "1"}, args...)
	cmd := exec.Command(liberatorBinary(e.t, e.root), all...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "POD_NAME="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &controllerProc{name: name, metricsAddr: metricsAddr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop()
		if e.t.Failed() {
			b, _ := os.ReadFile(logPath)
			e.t.Logf("controller %s log (last lines):\n%s", name, tail(string(b), 60))
		}
	})
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *controllerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the process at once, as a node crash would.
func (p *controllerProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *controllerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *controllerProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

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
	l := &v1alpha1.TakeoverList{}
	if err := e.tk.List(context.Background(), l); err != nil {
		e.t.Fatalf("list takeovers: %v", err)
	}
	var out []v1alpha1.Takeover
	for _, t := range l.Items {
		if t.Spec.NodeName == node {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp) })
	return out
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

// timeline prints the Takeover's phases relative to t0.
func timeline(t *testing.T, title string, t0 time.Time, tk v1alpha1.Takeover) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s — Takeover %s (node %s, strategy %s)\n", title, tk.Name, tk.Spec.NodeName, tk.Spec.Strategy)
	fmt.Fprintf(&b, "  %-16s %10s  %s\n", "PHASE", "T+", "REASON")
	for _, p := range tk.Status.Timeline {
		fmt.Fprintf(&b, "  %-16s %9.1fs  %s\n", p.Phase, p.Time.Sub(t0).Seconds(), p.Reason)
	}
	for _, m := range tk.Status.MovedPods {
		if m.ReadyTime != nil {
			fmt.Fprintf(&b, "  pod %s/%s Ready on %s at T+%.1fs\n", m.Namespace, m.Name, m.ReplacementNode, m.ReadyTime.Sub(t0).Seconds())
		}
	}
	t.Log(b.String())
	return b.String()
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
