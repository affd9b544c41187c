package bed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Control-plane components as kwokctl names them (their pid files and logs).
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
)

// errAlreadyRuns is StartComponent's error for a component that runs.
var errAlreadyRuns = errors.New("already runs")

// componentProc is what it takes to start a control-plane component again:
// its command line, environment and working directory as kwokctl started it.
type componentProc struct {
	argv []string
	env  []string
	dir  string
}

// NodeLog is the path of the log of the kwok process playing the node.
func (c *Cluster) NodeLog(name string) string {
	return filepath.Join(c.dir, "nodes", name+".log")
}

func (c *Cluster) pidFile(component string) string {
	return filepath.Join(c.dir, "kwok", "clusters", c.name, "pids", component+".pid")
}

// componentPID returns the pid of a running control-plane component.
func (c *Cluster) componentPID(component string) (int, error) {
	raw, err := os.ReadFile(c.pidFile(component))
	if err != nil {
		return 0, fmt.Errorf("bed: %s: %w", component, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("bed: %s: pid file: %w", component, err)
	}
	if !processExists(pid) {
		return pid, fmt.Errorf("bed: %s (pid %d) is not running", component, pid)
	}
	return pid, nil
}

// recordComponent remembers how a component was started, once, so that
// StartComponent can start it again after StopComponent or a crash.
func (c *Cluster) recordComponent(component string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.components == nil {
		c.components, c.held, c.ports = map[string]componentProc{}, map[string]bool{}, map[string]func(){}
	}
	if _, ok := c.components[component]; ok {
		return nil
	}
	pid, err := c.componentPID(component)
	if err != nil {
		return err
	}
	split := func(b []byte) []string {
		var out []string
		for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("bed: %s command line: %w", component, err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return fmt.Errorf("bed: %s environment: %w", component, err)
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return fmt.Errorf("bed: %s working directory: %w", component, err)
	}
	c.components[component] = componentProc{argv: split(cmdline), env: split(environ), dir: cwd}
	return nil
}

// StopComponent kills a control-plane component (SIGKILL to its process
// group), as a crash or a stopped service would end it. StartComponent
// starts it again with the same command line.
func (c *Cluster) StopComponent(component string) error {
	if err := c.recordComponent(component); err != nil {
		return err
	}
	pid, err := c.componentPID(component)
	if err != nil {
		return err
	}
	// While it is down its port is free, and kwokctl starting another
	// cluster could take it: hold the start lock until it runs again.
	unlock, err := lockFile(filepath.Join(stateRoot(), "start.lock"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.held[component] = true
	c.ports[component] = unlock
	c.mu.Unlock()
	if err := killPIDs([]int{pid}); err != nil {
		return fmt.Errorf("bed: stop %s: %w", component, err)
	}
	c.logf("bed: %s (pid %d) stopped", component, pid)
	return nil
}

// StartComponent starts a control-plane component stopped by StopComponent
// (or one that exited by itself, such as a controller manager that lost its
// leader Lease while the API server was away) with kwokctl's command line,
// and waits until the API server answers /readyz.
func (c *Cluster) StartComponent(ctx context.Context, component string) error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	c.mu.Lock()
	p, ok := c.components[component]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("bed: %s was never recorded; StopComponent or WatchComponents first", component)
	}
	if pid, err := c.componentPID(component); err == nil {
		return fmt.Errorf("bed: %s %w (pid %d)", component, errAlreadyRuns, pid)
	}
	log, err := os.OpenFile(filepath.Join(c.LogDir(), component+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bed: %s log: %w", component, err)
	}
	defer log.Close()
	fmt.Fprintf(log, "==== bed: %s started again at %s\n", component, time.Now().Format(time.RFC3339Nano))
	argv := p.argv
	if component == KubeControllerManager || component == KubeScheduler {
		argv = c.withFreeSecurePort(component, argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = p.env, p.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bed: start %s: %w", component, err)
	}
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(c.pidFile(component), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("bed: record pid of %s: %w", component, err)
	}
	c.mu.Lock()
	delete(c.held, component)
	unlock := c.ports[component]
	delete(c.ports, component)
	c.mu.Unlock()
	c.logf("bed: %s started again (pid %d)", component, cmd.Process.Pid)
	err = c.WaitAPIReady(ctx, 60*time.Second)
	if unlock != nil {
		unlock()
	}
	return err
}

// WaitAPIReady waits until the API server answers /readyz with ok.
func (c *Cluster) WaitAPIReady(ctx context.Context, timeout time.Duration) error {
	var last error
	err := waitFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		if err != nil {
			last = err
			return false, nil
		}
		return strings.TrimSpace(string(body)) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("bed: API server not ready (last: %v): %w", last, err)
	}
	return nil
}

// WatchComponents records every control-plane component's command line
// while all run, and from then on starts again, as a service manager would,
// any that exits without StopComponent (a controller manager or a scheduler
// gives up once it cannot renew its leader Lease), until ctx ends.
func (c *Cluster) WatchComponents(ctx context.Context) error {
	var errs []error
	for _, comp := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
		errs = append(errs, c.recordComponent(comp))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := c.ReviveComponents(ctx); err != nil && ctx.Err() == nil {
				c.logf("bed: %v", err)
			}
		}
	}()
	return nil
}

// ReviveComponents starts again every recorded component that is not
// running and was not stopped on purpose; it returns their names.
//
// While etcd or the API server is stopped on purpose, the controller
// manager and the scheduler are left down: started, each would wait a
// minute for the API server holding the start of every other component,
// the held one's included, and then exit again.
func (c *Cluster) ReviveComponents(ctx context.Context) ([]string, error) {
	var started []string
	for _, comp := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
		c.mu.Lock()
		_, ok := c.components[comp]
		held := c.held[comp]
		apiHeld := c.held[Etcd] || c.held[KubeAPIServer]
		c.mu.Unlock()
		if !ok || held || (apiHeld && (comp == KubeControllerManager || comp == KubeScheduler)) {
			continue
		}
		if _, err := c.componentPID(comp); err == nil {
			continue
		}
		c.logf("bed: %s exited; starting it again", comp)
		if err := c.StartComponent(ctx, comp); errors.Is(err, errAlreadyRuns) {
			continue // another caller (WatchComponents) started it first
		} else if err != nil {
			return started, err
		}
		started = append(started, comp)
	}
	return started, nil
}

// FreezeComponent stops a component's process with SIGSTOP: it holds its
// sockets open and answers nothing, as a process stalled on a disk or in a
// paused VM does. ThawComponent resumes it.
func (c *Cluster) FreezeComponent(component string) error {
	return c.signalComponent(component, syscall.SIGSTOP)
}

// ThawComponent resumes a component frozen by FreezeComponent (SIGCONT).
func (c *Cluster) ThawComponent(component string) error {
	return c.signalComponent(component, syscall.SIGCONT)
}

func (c *Cluster) signalComponent(component string, sig syscall.Signal) error {
	pid, err := c.componentPID(component)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("bed: %s %s: %w", sig, component, err)
	}
	c.logf("bed: %s (pid %d): %s", component, pid, sig)
	return nil
}

// RestartStuckKwok restarts the kwok of every node that is on but whose
// Lease has not been renewed within stale, and returns their names. kwok
// v0.8.0 keeps the Lease it last wrote and retries its update with that
// object's resourceVersion; when the API server went away in the middle of
// an update that etcd committed, every later update conflicts and the node
// never heartbeats again, which a kubelet (it reads the Lease back after a
// conflict) does not do. Restarting kwok is the bed's stand-in for that
// read-back: the node keeps its boot ID and its pods.
func (c *Cluster) RestartStuckKwok(ctx context.Context, stale time.Duration) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var restarted []string
	for _, name := range c.order {
		n := c.nodes[name]
		if n.state != powerOn {
			continue
		}
		l, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return restarted, fmt.Errorf("bed: lease of %s: %w", name, err)
		}
		if l.Spec.RenewTime != nil && time.Since(l.Spec.RenewTime.Time) < stale {
			continue
		}
		if err := n.kill(); err != nil {
			return restarted, fmt.Errorf("bed: restart kwok of %s: %w", name, err)
		}
		if err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, name, metav1.DeleteOptions{}); ignoreNotFound(err) != nil {
			return restarted, fmt.Errorf("bed: restart kwok of %s: delete lease: %w", name, err)
		}
		if err := c.startKwok(n); err != nil {
			return restarted, err
		}
		c.logf("bed: kwok of %s was stuck (Lease last renewed %v); restarted", name, l.Spec.RenewTime)
		restarted = append(restarted, name)
	}
	return restarted, nil
}

// withFreeSecurePort returns argv with its --secure-port moved to a free
// port when another process holds it. A controller manager or scheduler
// that exited by itself (it lost its leader Lease while etcd was frozen)
// freed its port, and kwokctl, which hands out ports in order, may have
// given it to a cluster started since: started again on it, the component
// would exit at once, again and again. Nothing dials these ports (they
// serve the components' own health and metrics).
func (c *Cluster) withFreeSecurePort(component string, argv []string) []string {
	const flag = "--secure-port="
	for i, a := range argv {
		port, ok := strings.CutPrefix(a, flag)
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", ":"+port)
		if err == nil {
			l.Close()
			return argv
		}
		free, err := net.Listen("tcp", ":0")
		if err != nil {
			return argv
		}
		next := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
		free.Close()
		out := slices.Clone(argv)
		out[i] = flag + next
		c.logf("bed: %s's port %s is taken (by another cluster); starting it on %s", component, port, next)
		return out
	}
	return argv
}
