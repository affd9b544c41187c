//go:build e2e

package scale

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// Users as the API server's audit log names them.
const (
	controllerSA = "liberator"
	seedSA       = "liberator-seed"
	controllerNS = "tkr-system"
)

func userOf(sa string) string { return "system:serviceaccount:" + controllerNS + ":" + sa }

// proc is a process the benchmark started and measures.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(name, dir string, env []string, argv ...string) (*proc, error) {
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL to its group after 20 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) logText() string { b, _ := os.ReadFile(p.log); return string(b) }

// controller is `liberator controller` from bin, run as the ServiceAccount
// liberator (config/rbac), as its Deployment would, with cfg as its file.
type controller struct{ *kit.Controller }

func startController(e *kit.Env, bin, cfg, dir string) (*controller, error) {
	e.ControllerBinary = bin
	c, err := e.StartController("liberator", cfg, dir)
	if err != nil {
		return nil, err
	}
	return &controller{c}, nil
}

// startSeed runs the seed's main.py with the one-word fix (delete_node's
// body=body, as the suite's baseline runs it) as the ServiceAccount
// liberator-seed, allowed to list and delete nodes.
func startSeed(ctx context.Context, e *kit.Env, dir string) (*proc, error) {
	if err := seedRBAC(ctx, e); err != nil {
		return nil, err
	}
	kubeconfig, err := e.C.ServiceAccountKubeconfig(ctx, controllerNS, seedSA)
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(filepath.Join(e.Root, "test/e2e/testdata/seed/main.py"))
	if err != nil {
		return nil, err
	}
	code := strings.Replace(string(src), "v1.delete_node(name, body)", "v1.delete_node(name, body=body)", 1)
	script := filepath.Join(dir, "main.py")
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		return nil, err
	}
	boot := fmt.Sprintf(`import runpy, kubernetes.config as c
c.load_incluster_config = lambda: c.load_kube_config(config_file=%q)
runpy.run_path(%q, run_name="__main__")
`, kubeconfig, script)
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			return nil, fmt.Errorf("python3 is not installed (it comes with Debian's python3-kubernetes; see hack/apt-packages.txt)")
		}
	}
	return startProc("seed", dir, nil, py, "-u", "-c", boot)
}

func seedRBAC(ctx context.Context, e *kit.Env) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: seedSA, Namespace: controllerNS}}
	if _, err := e.Kube.CoreV1().ServiceAccounts(controllerNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("seed ServiceAccount: %w", err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: seedSA},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "delete"}}},
	}
	if _, err := e.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("seed ClusterRole: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: seedSA},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: seedSA},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: seedSA, Namespace: controllerNS}},
	}
	if _, err := e.Kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("seed ClusterRoleBinding: %w", err)
	}
	return nil
}
