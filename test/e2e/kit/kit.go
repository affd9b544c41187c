// Package kit sets a test-bed cluster up for liberator: it installs
// liberator's namespace, CRD and RBAC from config/, runs the controller as a
// process under its ServiceAccount's identity, applies the examples, and
// renders Takeover timelines. The e2e suite and `make demo` share it.
package kit

import (
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
	"time"

	corev1 "k8s.io/api/core/v1"
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
	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// Env is a running cluster with liberator's API objects installed.
type Env struct {
	C      *bed.Cluster
	Kube   kubernetes.Interface
	Dyn    dynamic.Interface
	Mapper meta.ResettableRESTMapper
	// TK reads and writes Takeovers (admin identity).
	TK   client.Client
	Root string
	// SAKubeconfig is the kubeconfig of liberator's ServiceAccount.
	SAKubeconfig string
	// ControllerBinary, when set, is the liberator binary StartController
	// runs (default: the one Binary builds).
	ControllerBinary string
}

// Setup starts a cluster and installs config/namespace, config/crd and
// config/rbac. On error everything started is stopped.
func Setup(ctx context.Context, opts bed.Options) (_ *Env, err error) {
	root, err := bed.RepoRoot()
	if err != nil {
		return nil, err
	}
	c, err := bed.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	rc := c.RESTConfig()
	e := &Env{C: c, Kube: c.Client(), Root: root}
	if e.Dyn, err = dynamic.NewForConfig(rc); err != nil {
		return nil, err
	}
	e.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(e.Kube.Discovery()))
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if e.TK, err = client.New(rc, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	for _, dir := range []string{"config/namespace", "config/crd", "config/rbac"} {
		if err := e.Apply(ctx, dir); err != nil {
			return nil, err
		}
	}
	if e.SAKubeconfig, err = c.ServiceAccountKubeconfig(ctx, "tkr-system", "liberator"); err != nil {
		return nil, err
	}
	return e, nil
}

// Build runs kustomize on a directory of the repository.
func (e *Env) Build(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(e.Root, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// Apply server-side applies every object kustomize builds from dir, CRDs
// first.
func (e *Env) Apply(ctx context.Context, dir string) error {
	objs, err := e.Build(dir)
	if err != nil {
		return err
	}
	sort.SliceStable(objs, func(i, j int) bool {
		return objs[i].GetKind() == "CustomResourceDefinition" && objs[j].GetKind() != "CustomResourceDefinition"
	})
	for _, o := range objs {
		if err := e.ApplyObject(ctx, o); err != nil {
			return fmt.Errorf("apply %s %s from %s: %w", o.GetKind(), o.GetName(), dir, err)
		}
	}
	return nil
}

// ApplyObject server-side applies one object, retrying while its type is not
// yet served (a CRD just created).
func (e *Env) ApplyObject(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	var mapping *meta.RESTMapping
	err := Retry(30*time.Second, func() error {
		var err error
		mapping, err = e.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			e.Mapper.Reset()
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
	var ri dynamic.ResourceInterface = e.Dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		ri = e.Dyn.Resource(mapping.Resource).Namespace(ns)
	}
	force := true
	return Retry(30*time.Second, func() error {
		_, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "liberator-e2e", Force: &force})
		return err
	})
}

// ApplyFile server-side applies every object of a YAML file (documents
// split on "---"), in order.
func (e *Env) ApplyFile(ctx context.Context, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for doc := range strings.SplitSeq(string(raw), "\n---") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(obj) == 0 {
			continue
		}
		o := &unstructured.Unstructured{Object: obj}
		if err := e.ApplyObject(ctx, o); err != nil {
			return fmt.Errorf("apply %s %s from %s: %w", o.GetKind(), o.GetName(), path, err)
		}
	}
	return nil
}

// Retry calls f every 250 ms until it succeeds or timeout passes.
func Retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Takeovers returns the node's Takeovers, oldest first.
func (e *Env) Takeovers(ctx context.Context, node string) ([]v1alpha1.Takeover, error) {
	l := &v1alpha1.TakeoverList{}
	if err := e.TK.List(ctx, l); err != nil {
		return nil, err
	}
	var out []v1alpha1.Takeover
	for _, t := range l.Items {
		if t.Spec.NodeName == node {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp) })
	return out, nil
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/liberator once per process and returns its path.
func Binary(root string) (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liberator-bin-")
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
	return binPath, buildErr
}

// Controller is a liberator controller running as a process.
type Controller struct {
	Name        string
	MetricsAddr string
	HealthAddr  string
	Log         string
	cmd         *exec.Cmd
	done        chan struct{}
}

// FreeAddr returns a free loopback address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartController runs `liberator controller` with cfg as its config file,
// under the ServiceAccount's kubeconfig; dir holds its config and log.
func (e *Env) StartController(name, cfg, dir string, args ...string) (*Controller, error) {
	var err error
	bin := e.ControllerBinary
	if bin == "" {
		if bin, err = Binary(e.Root); err != nil {
			return nil, err
		}
	}
	cfgPath := filepath.Join(dir, name+"-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p := &Controller{Name: name, Log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	if p.MetricsAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if p.HealthAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	logf, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	all := append([]string{"controller", "--kubeconfig", e.SAKubeconfig, "--config", cfgPath,
		"--metrics-addr", p.MetricsAddr, "--health-addr", p.HealthAddr, "--v", "1"}, args...)
	p.cmd = exec.Command(bin, all...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), "POD_NAME="+name)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 30 s).
func (p *Controller) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// Kill ends the process at once, as a crash would.
func (p *Controller) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Controller) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process's ID.
func (p *Controller) Pid() int { return p.cmd.Process.Pid }

// Ready reports whether the controller's /readyz answers 200 (its informer
// caches synced).
func (p *Controller) Ready() bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + p.HealthAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogText returns the process's log so far.
func (p *Controller) LogText() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Metrics scrapes /metrics.
func (p *Controller) Metrics() (string, error) {
	resp, err := http.Get("http://" + p.MetricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Timeline writes the Takeover's phases relative to t0.
func Timeline(w io.Writer, title string, t0 time.Time, tk v1alpha1.Takeover) {
	fmt.Fprintf(w, "%s — Takeover %s (node %s, strategy %s)\n", title, tk.Name, tk.Spec.NodeName, tk.Spec.Strategy)
	fmt.Fprintf(w, "  %-16s %10s  %s\n", "PHASE", "T+", "REASON")
	for _, p := range tk.Status.Timeline {
		fmt.Fprintf(w, "  %-16s %9.1fs  %s\n", p.Phase, p.Time.Sub(t0).Seconds(), p.Reason)
	}
	for _, m := range tk.Status.MovedPods {
		if m.ReadyTime != nil {
			fmt.Fprintf(w, "  pod %s/%s Ready on %s at T+%.1fs\n", m.Namespace, m.Name, m.ReplacementNode, m.ReadyTime.Sub(t0).Seconds())
		}
	}
}

// PodReady reports whether the pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
