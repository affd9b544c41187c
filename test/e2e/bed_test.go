//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/kubeutil"

	"github.com/liberator-dev/liberator/test/e2e/bed"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestBed checks the test bed itself: nodes heartbeat through Leases, a
// StatefulSet pod with a CSI volume runs and gets its volume attached,
// powering its node off stops the Lease and turns the node Unknown after the
// kube-controller-manager's grace period while Kubernetes leaves the pod
// where it is, and powering the node on makes it Ready with a new boot ID.
func TestBed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := bed.Start(ctx, bed.Options{Workers: 2, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	cs := c.Client()
	b := bedCheck{ctx, t, cs}

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("got %d nodes, want 3 (control plane and 2 workers)", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if kubeutil.NodeReadyStatus(&n) != corev1.ConditionTrue {
			t.Errorf("node %s is not Ready", n.Name)
		}
		if n.Status.NodeInfo.BootID == "" {
			t.Errorf("node %s has no boot ID", n.Name)
		}
		lease := b.lease(n.Name)
		if d := lease.Spec.LeaseDurationSeconds; d == nil || *d != 40 {
			t.Errorf("lease of %s: leaseDurationSeconds %v, want 40", n.Name, d)
		}
	}
	cp, err := cs.CoreV1().Nodes().Get(ctx, bed.ControlPlaneNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Spec.Taints) != 1 || cp.Spec.Taints[0].Key != "node-role.kubernetes.io/control-plane" || cp.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("control-plane node taints = %v, want only the control-plane NoSchedule taint", cp.Spec.Taints)
	}

	// A pod without volumes starts at once.
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.poll(30*time.Second, "pod plain Ready", func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "plain", metav1.GetOptions{})
		return err == nil && podReady(p)
	})

	// The seed's StatefulSet: mysql, volumeClaimTemplate "pvc", StorageClass
	// "standard", on a volume provisioned beforehand.
	const ns, pvName, claim = "default", "pv-mysql-0", "pvc-mysql-0"
	if err := c.CreateVolume(ctx, pvName, ns, claim, "2Gi"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, seedMySQLService(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, seedMySQLStatefulSet(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	b.poll(60*time.Second, "pod mysql-0 Ready", func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
		if err != nil || p.Spec.NodeName == "" || !podReady(p) {
			return false
		}
		pod = p
		return true
	})
	node := pod.Spec.NodeName
	// Like a kubelet, the bed starts the pod only once its volume is attached.
	if v, ok := b.attachment(pvName); !ok || !v.Status.Attached || v.Spec.NodeName != node {
		t.Errorf("mysql-0 Ready on %s before %s was attached there", node, pvName)
	}
	if want := "kubernetes.io/csi/" + bed.CSIDriver + "^" + pvName; !slices.Contains(b.node(node).Status.VolumesInUse, corev1.UniqueVolumeName(want)) {
		t.Errorf("%s does not report %s in use", node, want)
	}
	if node == bed.ControlPlaneNode {
		t.Fatalf("mysql-0 scheduled on the tainted control-plane node")
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.VolumeName != pvName || pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim %s: volume %q phase %s, want bound to %s", claim, pvc.Spec.VolumeName, pvc.Status.Phase, pvName)
	}
	var va storagev1.VolumeAttachment
	b.poll(60*time.Second, "VolumeAttachment of "+pvName+" attached to "+node, func() bool {
		v, ok := b.attachment(pvName)
		va = v
		return ok && v.Spec.NodeName == node && v.Status.Attached
	})
	t.Logf("mysql-0 Ready on %s, %s attached by %s", node, pvName, va.Name)

	// Leases are renewed every quarter of their duration (10 s).
	first := b.lease(node).Spec.RenewTime.Time
	var renewals []time.Time
	b.poll(30*time.Second, "two lease renewals of "+node, func() bool {
		rt := b.lease(node).Spec.RenewTime.Time
		if (len(renewals) == 0 && rt.After(first)) || (len(renewals) == 1 && rt.After(renewals[0])) {
			renewals = append(renewals, rt)
		}
		return len(renewals) == 2
	})
	if gap := renewals[1].Sub(renewals[0]); gap < 8*time.Second || gap > 12*time.Second {
		t.Errorf("lease renewed %s apart, want about 10s", gap)
	}
	oldBoot := b.node(node).Status.NodeInfo.BootID

	// Power off: the Lease stops, the node turns Unknown after the grace
	// period (50 s after the last renewal), and the pod stays where it is.
	if err := c.PowerOff(node); err != nil {
		t.Fatal(err)
	}
	off := time.Now()
	if c.StillRunning(node) {
		t.Errorf("StillRunning(%s) after PowerOff", node)
	}
	lastRenew := b.lease(node).Spec.RenewTime.Time
	b.poll(70*time.Second, node+" Ready=Unknown", func() bool {
		return kubeutil.NodeReadyStatus(b.node(node)) == corev1.ConditionUnknown
	})
	unknownAfter := time.Since(off)
	sinceRenew := time.Since(lastRenew)
	t.Logf("%s Ready=Unknown %s after power-off, %s after its last lease renewal", node, unknownAfter.Round(time.Second), sinceRenew.Round(time.Second))
	if sinceRenew < 50*time.Second || sinceRenew > 62*time.Second {
		t.Errorf("node went Unknown %s after the last renewal, want 50s grace plus at most one 5s monitor period", sinceRenew)
	}
	if rt := b.lease(node).Spec.RenewTime.Time; !rt.Equal(lastRenew) {
		t.Errorf("lease of powered-off %s renewed at %s", node, rt)
	}
	// Hold on until a minute after power-off, then check Kubernetes alone
	// did not move the pod.
	if d := time.Until(off.Add(60 * time.Second)); d > 0 {
		time.Sleep(d)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != pod.UID || p.Spec.NodeName != node {
		t.Errorf("mysql-0 moved without fencing: uid %s on %s, was %s on %s", p.UID, p.Spec.NodeName, pod.UID, node)
	}
	if p.DeletionTimestamp != nil {
		t.Errorf("mysql-0 is being deleted %s after power-off", time.Since(off).Round(time.Second))
	}
	if podReady(p) {
		t.Errorf("mysql-0 still Ready on the Unknown node")
	}
	if v, ok := b.attachment(pvName); !ok || v.Spec.NodeName != node {
		t.Errorf("VolumeAttachment of %s: %v on %q, want it kept on %s", pvName, ok, v.Spec.NodeName, node)
	}
	if !bedHasTaint(b.node(node), corev1.TaintNodeUnreachable) {
		t.Errorf("%s lacks the %s taint", node, corev1.TaintNodeUnreachable)
	}

	// Power on: Ready again, with a new boot ID.
	on := time.Now()
	if err := c.PowerOn(ctx, node); err != nil {
		t.Fatal(err)
	}
	b.poll(30*time.Second, node+" Ready after power-on", func() bool {
		return kubeutil.NodeReadyStatus(b.node(node)) == corev1.ConditionTrue
	})
	t.Logf("%s Ready %s after power-on", node, time.Since(on).Round(100*time.Millisecond))
	n := b.node(node)
	if n.Status.NodeInfo.BootID == "" || n.Status.NodeInfo.BootID == oldBoot {
		t.Errorf("boot ID after power-on = %q, want a new one (was %q)", n.Status.NodeInfo.BootID, oldBoot)
	}
	if !b.lease(node).Spec.RenewTime.After(on) {
		t.Errorf("lease of %s not renewed after power-on", node)
	}
	// The pod, still bound to the node, starts again there.
	b.poll(30*time.Second, "mysql-0 Ready again after power-on", func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
		return err == nil && p.UID == pod.UID && podReady(p)
	})
}

// TestBedVolumes checks that the bed's volumes behave as on real nodes: a
// node that cannot report its volumes unmounted keeps its RWO volume, so a
// replacement pod elsewhere waits with a Multi-Attach error until the node is
// tainted out-of-service.
func TestBedVolumes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := bed.Start(ctx, bed.Options{Workers: 2, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	cs := c.Client()
	b := bedCheck{ctx, t, cs}
	const ns, pvName = "default", "pv-mysql-0"
	if err := c.CreateVolume(ctx, pvName, ns, "pvc-mysql-0", "2Gi"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, seedMySQLStatefulSet(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var old *corev1.Pod
	b.poll(60*time.Second, "pod mysql-0 Ready", func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
		old = p
		return err == nil && podReady(p)
	})
	node := old.Spec.NodeName

	if err := c.CutOff(node); err != nil {
		t.Fatal(err)
	}
	if !c.StillRunning(node) || c.PoweredOn(node) {
		t.Fatalf("after CutOff(%s): StillRunning %v, PoweredOn %v; want true, false", node, c.StillRunning(node), c.PoweredOn(node))
	}
	// Keep the replacement off the cut-off node, which is still Ready for now.
	cordon := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, cordon, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "mysql-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	var repl *corev1.Pod
	b.poll(30*time.Second, "replacement mysql-0 Multi-Attach error", func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
		if err != nil || p.UID == old.UID || p.Spec.NodeName == "" {
			return false
		}
		repl = p
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(p.UID)})
		return err == nil && slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == "FailedAttachVolume" && strings.Contains(e.Message, "Multi-Attach")
		})
	})
	if repl.Spec.NodeName == node {
		t.Fatalf("replacement scheduled on the cordoned node %s", node)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if podReady(p) {
		t.Errorf("replacement mysql-0 Ready on %s while %s is attached to %s", p.Spec.NodeName, pvName, node)
	}
	if v, ok := b.attachment(pvName); !ok || v.Spec.NodeName != node {
		t.Errorf("VolumeAttachment of %s on %q, want it kept on %s", pvName, v.Spec.NodeName, node)
	}

	taint := []byte(`{"spec":{"taints":[{"key":"node.kubernetes.io/out-of-service","value":"nodeshutdown","effect":"NoExecute"}]}}`)
	tainted := time.Now()
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, taint, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	b.poll(30*time.Second, "mysql-0 Ready on "+repl.Spec.NodeName+" with the volume moved", func() bool {
		v, ok := b.attachment(pvName)
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "mysql-0", metav1.GetOptions{})
		return ok && v.Spec.NodeName == repl.Spec.NodeName && v.Status.Attached && err == nil && p.UID == repl.UID && podReady(p)
	})
	t.Logf("volume moved and mysql-0 Ready %s after the out-of-service taint", time.Since(tainted).Round(100*time.Millisecond))
}

func seedMySQLService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "mysql", Labels: map[string]string{"app": "mysql-sts"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": "mysql-sts"},
			Ports:     []corev1.ServicePort{{Name: "mysql", Port: 3306}},
		},
	}
}

func seedMySQLStatefulSet() *appsv1.StatefulSet {
	labels := map[string]string{"app": "mysql-sts"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "mysql"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "mysql",
			Replicas:    new(int32(1)),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:         "mysql",
						Image:        "mysql:5.7",
						Ports:        []corev1.ContainerPort{{Name: "mysql", ContainerPort: 3306}},
						VolumeMounts: []corev1.VolumeMount{{Name: "pvc", MountPath: "/var/lib/mysql"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "pvc"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: new(bed.StorageClass),
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					},
				},
			}},
		},
	}
}

// bedCheck holds what the checks of the bed's own tests need.
type bedCheck struct {
	ctx context.Context
	t   *testing.T
	cs  kubernetes.Interface
}

func (b bedCheck) poll(timeout time.Duration, what string, cond func() bool) {
	b.t.Helper()
	err := wait.PollUntilContextTimeout(b.ctx, 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		b.t.Fatalf("waiting %s for %s: %v", timeout, what, err)
	}
}

func (b bedCheck) node(name string) *corev1.Node {
	b.t.Helper()
	n, err := b.cs.CoreV1().Nodes().Get(b.ctx, name, metav1.GetOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

func (b bedCheck) lease(node string) *coordinationv1.Lease {
	b.t.Helper()
	l, err := b.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(b.ctx, node, metav1.GetOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	if l.Spec.RenewTime == nil {
		b.t.Fatalf("lease of %s has no renew time", node)
	}
	return l
}

// attachment returns the VolumeAttachment of the persistent volume, if any.
func (b bedCheck) attachment(pv string) (storagev1.VolumeAttachment, bool) {
	b.t.Helper()
	list, err := b.cs.StorageV1().VolumeAttachments().List(b.ctx, metav1.ListOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, va := range list.Items {
		if src := va.Spec.Source.PersistentVolumeName; src != nil && *src == pv {
			return va, true
		}
	}
	return storagev1.VolumeAttachment{}, false
}

// podReady is the pod's Ready condition (kubeutil, shared with the
// controller and the operator commands).
var podReady = kubeutil.PodReadyCondition

func bedHasTaint(n *corev1.Node, key string) bool {
	for _, tn := range n.Spec.Taints {
		if tn.Key == key {
			return true
		}
	}
	return false
}

// A controller manager that exits by itself while another process took its
// port (kwokctl hands ports out in order, so a cluster started meanwhile
// may have it) comes back on another port and stays up, instead of exiting
// again at every restart. Not parallel: while it holds the port, a cluster
// that another test starts could be handed it by kwokctl.
func TestBedComponentPortTaken(t *testing.T) {
	ctx := t.Context()
	c, err := bed.Start(ctx, bed.Options{Workers: 1, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := c.WatchComponents(ctx); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(c.Dir(), "kwok", "clusters", c.Name(), "pids", bed.KubeControllerManager+".pid")
	running := func() (int, string) {
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			return 0, ""
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return 0, ""
		}
		for _, a := range strings.Split(string(cmdline), "\x00") {
			if p, ok := strings.CutPrefix(a, "--secure-port="); ok {
				return pid, p
			}
		}
		return pid, ""
	}
	pid, port := running()
	if pid == 0 || port == "" {
		t.Fatalf("no running kube-controller-manager with a --secure-port (pid %d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		if l, err = net.Listen("tcp", ":"+port); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("cannot take port %s after the kill: %v", port, err)
	}
	defer l.Close()
	var newPID int
	var newPort string
	for deadline := time.Now().Add(30 * time.Second); newPID == 0 || newPID == pid; {
		if time.Now().After(deadline) {
			t.Fatal("kube-controller-manager was not started again within 30 s")
		}
		time.Sleep(500 * time.Millisecond)
		newPID, newPort = running()
	}
	time.Sleep(12 * time.Second) // two of WatchComponents' rounds
	if again, _ := running(); again != newPID {
		t.Fatalf("kube-controller-manager started again as pid %d on port %s, then exited (now pid %d): its port %s is taken", newPID, newPort, again, port)
	}
	if newPort == port {
		t.Fatalf("started again on the taken port %s", port)
	}
	t.Logf("kube-controller-manager back as pid %d on port %s (its port %s was taken)", newPID, newPort, port)
}
