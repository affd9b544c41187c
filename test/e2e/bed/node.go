package bed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/liberator-dev/liberator/internal/kubeutil"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// powerState is what the bed knows about a simulated node.
type powerState int

const (
	// powerOn: the node's kwok process runs; it heartbeats and runs pods.
	powerOn powerState = iota
	// powerOff: the node is down; nothing of it runs.
	powerOff
	// cutOff: the node is unreachable but keeps running its workloads.
	cutOff
	// watchdogReset: the node's watchdog reset it; nothing of it runs
	// until it boots again.
	watchdogReset
)

func (s powerState) String() string {
	switch s {
	case powerOn:
		return "on"
	case powerOff:
		return "off"
	case watchdogReset:
		return "reset"
	default:
		return "cut off"
	}
}

// simNode is one simulated node and the kwok process playing its kubelet.
type simNode struct {
	name         string
	index        int
	controlPlane bool
	log          string
	pidFile      string

	state powerState
	cmd   *exec.Cmd
	// exited is closed once cmd has exited and been waited for.
	exited chan struct{}
	// boots counts starts of the node's kwok process.
	boots int
	// history records every change of state, on this process's clock.
	history []Transition

	// bootID is the node's current boot ID; bootIDFile holds it for its
	// agent (--boot-id-file).
	bootID     string
	bootIDFile string

	// Of isolated nodes only (Options.Isolated): the network namespace,
	// the node's address there, how it is cut off, its watchdog device,
	// its agent and the watchdog's resets.
	ns       string
	ip       string
	cut      Partition
	watchdog *watchdog
	agent    *agentProc
	resets   []Reset
}

// Transition is a change of a simulated node's state: "on" (kwok runs; the
// node heartbeats and runs its pods), "off" (nothing of it runs), "cut
// off" (unreachable or its kubelet dead, its workloads still running) or
// "reset" (its watchdog reset it: nothing of it runs, as after "off").
type Transition struct {
	Time  time.Time
	State string
}

// Off reports whether nothing of the node runs from this transition on: it
// was powered off or reset by its watchdog.
func (t Transition) Off() bool { return t.State == "off" || t.State == "reset" }

func (n *simNode) record(s powerState) {
	n.history = append(n.history, Transition{Time: time.Now(), State: s.String()})
}

// History returns the node's state changes, oldest first: the bed's own
// timestamps of when it was started, powered off, cut off or powered on.
func (c *Cluster) History(name string) []Transition {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil
	}
	return slices.Clone(n.history)
}

// Annotations and labels the bed puts on every simulated node.
const (
	// kwokNodeAnnotation marks a node as fake for kwok's own selectors and
	// for people reading the cluster.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// attachDetachAnnotation makes the attach-detach controller of the
	// kube-controller-manager attach volumes for the node (the kubelet sets
	// it on real nodes).
	attachDetachAnnotation = "volumes.kubernetes.io/controller-managed-attach-detach"
	controlPlaneLabel      = "node-role.kubernetes.io/control-plane"
)

// internalIP is the node's address. It is on loopback so that anything that
// dials a node (kube-apiserver for logs or exec) stays on this machine, where
// nothing listens.
// An isolated node's address is its namespace's.
func (n *simNode) internalIP() string {
	if n.ip != "" {
		return n.ip
	}
	return fmt.Sprintf("127.0.1.%d", n.index)
}

// newBootID gives the node a new boot ID and writes it to its boot ID file.
func (n *simNode) newBootID() error {
	n.bootID = uuid.NewString()
	if err := os.WriteFile(n.bootIDFile, []byte(n.bootID+"\n"), 0o644); err != nil {
		return fmt.Errorf("bed: boot ID of %s: %w", n.name, err)
	}
	return nil
}

// podCIDR is the range kwok assigns pod IPs from. Pod IPs are only recorded in
// objects; nothing in the bed dials them.
func (n *simNode) podCIDR() string { return fmt.Sprintf("10.244.%d.0/24", n.index) }

func (c *Cluster) createNode(ctx context.Context, n *simNode) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
				"type":                 "kwok",
			},
			Annotations: map[string]string{
				kwokNodeAnnotation:             "fake",
				attachDetachAnnotation:         "true",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		Spec: corev1.NodeSpec{
			PodCIDR:  n.podCIDR(),
			PodCIDRs: []string{n.podCIDR()},
		},
		Status: corev1.NodeStatus{
			Capacity:    nodeResources(),
			Allocatable: nodeResources(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.internalIP()},
				{Type: corev1.NodeHostName, Address: n.name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				BootID:          n.bootID,
				MachineID:       uuid.NewString(),
				SystemUUID:      uuid.NewString(),
				Architecture:    "amd64",
				OperatingSystem: "linux",
				OSImage:         "liberator test bed",
			},
		},
	}
	if n.controlPlane {
		node.Labels[controlPlaneLabel] = ""
		node.Spec.Taints = []corev1.Taint{{Key: controlPlaneLabel, Effect: corev1.TaintEffectNoSchedule}}
	}
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bed: create node %s: %w", n.name, err)
	}
	return nil
}

func nodeResources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

// startKwok starts the kwok process that plays the node's kubelet. The
// caller holds c.mu or owns c exclusively.
func (c *Cluster) startKwok(n *simNode) error {
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bed: kwok log of %s: %w", n.name, err)
	}
	defer logFile.Close()
	n.boots++
	fmt.Fprintf(logFile, "==== bed: boot %d of %s at %s\n", n.boots, n.name, time.Now().Format(time.RFC3339Nano))
	argv := []string{c.bin + "/kwok",
		"--kubeconfig", c.kubeconfig,
		"--config", c.stages,
		"--manage-all-nodes=false",
		"--manage-single-node", n.name,
		"--node-lease-duration-seconds", strconv.Itoa(c.lease),
		"--node-ip", n.internalIP(),
		"--cidr", n.podCIDR(),
	}
	if n.ns != "" {
		// In the node's namespace, reaching the API server on the bridge.
		argv[2] = c.net.kubeconfig
		argv = append([]string{"ip", "netns", "exec", n.ns}, argv...)
	}
	cmd, exited, err := c.runKwok(argv, logFile, n.pidFile, "node "+n.name)
	if err != nil {
		return err
	}
	n.cmd, n.exited, n.state = cmd, exited, powerOn
	n.record(powerOn)
	return nil
}

// runKwok starts a kwok process (argv) logging to logFile, in its own
// process group so that Stop can kill it whole, and killed with this
// process if that dies first; it records the pid in pidFile (Stop finds it
// there). The channel is closed when the process exits.
func (c *Cluster) runKwok(argv []string, logFile *os.File, pidFile, what string) (*exec.Cmd, chan struct{}, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(c.dir, "home"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("bed: start kwok for %s: %w", what, err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("bed: record kwok pid of %s: %w", what, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return cmd, exited, nil
}

// kill stops the node's kwok process at once (SIGKILL to its group): the
// node's heartbeats and status updates stop mid-flight, like a power cut.
func (n *simNode) kill() error {
	if n.cmd == nil {
		return nil
	}
	pid := n.cmd.Process.Pid
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill kwok (pid %d): %w", pid, err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("kwok (pid %d) did not exit after SIGKILL", pid)
	}
	n.cmd = nil
	_ = os.Remove(n.pidFile)
	return nil
}

// waitNodeUp waits until the node is Ready and schedulable and its Lease is
// fresh.
func (c *Cluster) waitNodeUp(ctx context.Context, n *simNode, timeout time.Duration) error {
	var last string
	err := waitFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		select {
		case <-n.exited:
			return false, fmt.Errorf("kwok exited")
		default:
		}
		node, err := c.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() == nil {
				last = err.Error()
			}
			return false, nil
		}
		if !kubeutil.NodeReady(node) {
			last = "node not Ready"
			return false, nil
		}
		// The node lifecycle controller lifts this taint once it has seen
		// the node Ready; until then nothing is scheduled there.
		if slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }) {
			last = "node still tainted " + corev1.TaintNodeNotReady
			return false, nil
		}
		lease, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() == nil {
				last = "lease: " + err.Error()
			}
			return false, nil
		}
		if !leaseFresh(lease) {
			last = "lease not renewed"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("bed: node %s did not come up (%s; kwok log: %s): %w", n.name, last, n.log, err)
	}
	return nil
}

// leaseFresh reports whether the Lease is held and was renewed within its
// duration.
func leaseFresh(l *coordinationv1.Lease) bool {
	if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	return time.Now().Before(expiry)
}

func (c *Cluster) node(name string) (*simNode, error) {
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("bed: no simulated node %q", name)
	}
	return n, nil
}

// PowerOff turns the node off: its kwok process is killed, so its Lease and
// status stop being renewed and its pods stop being acted on. The bed records
// the node's workloads as stopped.
func (c *Cluster) PowerOff(name string) error {
	return c.down(name, powerOff)
}

// CutOff disconnects a node that is on: like PowerOff, nothing of it
// reaches the cluster any more, but the bed records that its workloads are
// still running (see StillRunning). PowerOff of a cut-off node (fencing it)
// stops them.
func (c *Cluster) CutOff(name string) error {
	return c.down(name, cutOff)
}

func (c *Cluster) down(name string, state powerState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if (n.state == powerOff || n.state == watchdogReset) && state == cutOff {
		return fmt.Errorf("bed: cannot cut off node %s: it is %s", name, n.state)
	}
	// A partitioned node's kwok still runs.
	if err := n.kill(); err != nil {
		return fmt.Errorf("bed: %s node %s: %w", state, name, err)
	}
	if state == powerOff {
		if err := n.killAgent(); err != nil {
			return fmt.Errorf("bed: %s node %s: %w", state, name, err)
		}
		if n.watchdog != nil {
			n.watchdog.disarm()
		}
	}
	n.state = state
	n.record(state)
	c.logf("bed: node %s is %s", name, state)
	return nil
}

// StillRunning reports whether the node was cut off while its workloads
// kept running: true after CutOff, false after PowerOff or PowerOn. A
// workload that runs there and elsewhere at once is a split brain.
func (c *Cluster) StillRunning(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	return ok && n.state == cutOff
}

// PoweredOn reports whether the node is up and connected.
func (c *Cluster) PoweredOn(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	return ok && n.state == powerOn
}

// PowerOn boots a node that is off or cut off: the Node gets a new
// status.nodeInfo.bootID, its pods start again (those being deleted are
// removed, the others go back to Pending and turn Ready once their volumes
// are attached), and a new kwok process takes the node's Lease over and
// heartbeats again. It returns once the node is Ready.
func (c *Cluster) PowerOn(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if n.state == powerOn {
		return fmt.Errorf("bed: node %s is already on", name)
	}
	if n.cut != Connected {
		return fmt.Errorf("bed: node %s is %s: Heal it before it boots", name, n.cut)
	}
	// A reboot: whatever still ran of the node stops, and its watchdog
	// stops with it until its agent opens it again.
	if err := errors.Join(n.kill(), n.killAgent()); err != nil {
		return fmt.Errorf("bed: power on %s: %w", name, err)
	}
	if n.watchdog != nil {
		n.watchdog.disarm()
	}
	if err := n.newBootID(); err != nil {
		return err
	}
	bootID := n.bootID
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"nodeInfo": map[string]any{"bootID": bootID}}})
	if err != nil {
		return err
	}
	if _, err := c.client.CoreV1().Nodes().PatchStatus(ctx, name, patch); apierrors.IsNotFound(err) {
		// The Node object was deleted while the node was off: like a
		// kubelet, register it again (with the new boot ID).
		if err := c.createNode(ctx, n); err != nil {
			return fmt.Errorf("bed: power on %s: re-register: %w", name, err)
		}
	} else if err != nil {
		return fmt.Errorf("bed: power on %s: set boot ID: %w", name, err)
	}
	if err := c.restartPods(ctx, name); err != nil {
		return fmt.Errorf("bed: power on %s: %w", name, err)
	}
	// A kubelet holds its Lease under the node's name and renews it at once
	// after a reboot. kwok holds it under an identity that is new with every
	// process, and a new process that finds a Lease it does not hold waits
	// a renew interval or more before taking it over. It creates a missing
	// one at once.
	if err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, name, metav1.DeleteOptions{}); ignoreNotFound(err) != nil {
		return fmt.Errorf("bed: power on %s: delete old lease: %w", name, err)
	}
	if err := c.startKwok(n); err != nil {
		return err
	}
	start := time.Now()
	err = waitFor(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		l, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		return l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(start), nil
	})
	if err != nil {
		return fmt.Errorf("bed: power on %s: lease not renewed (kwok log: %s): %w", name, n.log, err)
	}
	if err := c.waitNodeUp(ctx, n, 30*time.Second); err != nil {
		return err
	}
	if c.volumes != nil {
		c.volumes.nodeUp(name)
	}
	if c.agent != nil && n.ns != "" {
		if err := c.startAgent(n); err != nil {
			return err
		}
	}
	c.logf("bed: node %s is on (boot ID %s) after %s", name, bootID, time.Since(start).Round(time.Millisecond))
	return nil
}

// restartPods puts the pods bound to a node that is booting back to where a
// kubelet starting up finds them: not started, volumes not yet mounted.
func (c *Cluster) restartPods(ctx context.Context, node string) error {
	pods, err := c.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	unmount := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, MountedAnnotation)
	pending := []byte(`{"status":{"phase":"Pending","conditions":[` +
		`{"type":"Ready","status":"False","reason":"NodeRebooted"},` +
		`{"type":"ContainersReady","status":"False","reason":"NodeRebooted"}]}}`)
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		pods := c.client.CoreV1().Pods(p.Namespace)
		if _, err := pods.Patch(ctx, p.Name, types.MergePatchType, unmount, metav1.PatchOptions{}); ignoreNotFound(err) != nil {
			return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		if _, err := pods.Patch(ctx, p.Name, types.StrategicMergePatchType, pending, metav1.PatchOptions{}, "status"); ignoreNotFound(err) != nil {
			return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

// nodeAttachable reports whether volumes can be attached to the node: it
// must be up and reachable.
func (c *Cluster) nodeAttachable(name string) bool {
	return c.PoweredOn(name)
}

// HoldReadyAnnotation on a Node keeps kwok from setting its Ready condition
// back to True (see stages/README.md); its Lease is renewed as before.
const HoldReadyAnnotation = "bed.liberator.test/hold-ready"

// HoldReady sets the node's Ready condition to status (False, as a live
// kubelet reports while its runtime or network restarts; or Unknown, as the
// node lifecycle controller writes) and keeps it there while the node's
// kwok keeps renewing its Lease, until ReleaseReady.
func (c *Cluster) HoldReady(ctx context.Context, name string, status corev1.ConditionStatus, reason, message string) error {
	meta := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"true"}}}`, HoldReadyAnnotation)
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, meta, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("bed: hold Ready of %s: %w", name, err)
	}
	now := metav1.Now()
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: message,
		LastHeartbeatTime: now, LastTransitionTime: now,
	}}}})
	if err != nil {
		return err
	}
	if _, err := c.client.CoreV1().Nodes().PatchStatus(ctx, name, patch); err != nil {
		return fmt.Errorf("bed: set Ready=%s on %s: %w", status, name, err)
	}
	c.logf("bed: node %s held Ready=%s (%s) while its Lease renews", name, status, reason)
	return nil
}

// ReleaseReady lets kwok report the node Ready again.
func (c *Cluster) ReleaseReady(ctx context.Context, name string) error {
	meta := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, HoldReadyAnnotation)
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, meta, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("bed: release Ready of %s: %w", name, err)
	}
	return nil
}
