package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// now is the fixed clock of the status fixtures.
var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }

func atMicro(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(d)) }

func node(name, ip string, ready corev1.ConditionStatus, mut ...func(*corev1.Node)) corev1.Node {
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		},
	}
	for _, m := range mut {
		m(&n)
	}
	return n
}

func lease(name string, age time.Duration) coordinationv1.Lease {
	rt := metav1.NewMicroTime(now.Add(-age))
	return coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: release.NodeLeaseNamespace}, Spec: coordinationv1.LeaseSpec{RenewTime: &rt}}
}

func ownedPod(ns, name, nodeName, kind, owner string, claims ...string) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if kind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, UID: types.UID("uid-" + owner), Controller: new(true)}}
	}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func claim(ns, name string, mode corev1.PersistentVolumeAccessMode) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{mode}}}
}

// fixture is a cluster right after worker-1 failed: its Takeover has
// released mysql-0, which runs again on worker-2; worker-3 is being
// evacuated.
func fixture() snapshot {
	oos := func(n *corev1.Node) {
		n.Spec.Unschedulable = true
		n.Spec.Taints = []corev1.Taint{
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
			release.OutOfServiceTaint,
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: FenceReadyCondition, Status: corev1.ConditionTrue, Reason: "PowerFenceReachable"})
	}
	cp := func(n *corev1.Node) {
		n.Labels["node-role.kubernetes.io/control-plane"] = ""
		n.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	}
	planned := func(n *corev1.Node) {
		n.Spec.Unschedulable = true
		n.Annotations[PlannedTakeoverAnnotation] = "2026-03-14T11:58:00Z"
	}
	done := ownedPod("batch", "report-1", "worker-2", "Job", "report")
	done.Status.Phase = corev1.PodSucceeded
	tk := v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-20260314-115840", CreationTimestamp: at(-80 * time.Second)},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "worker-1", Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "lab"},
		Status: v1alpha1.TakeoverStatus{
			Phase: v1alpha1.PhaseWorkloadsReady, Reason: "AwaitingNodeReturn",
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: atMicro(-80 * time.Second), Reason: "LeaseExpired", Message: "Lease not renewed for 40s"},
				{Phase: v1alpha1.PhaseFencing, Time: atMicro(-80 * time.Second), Reason: "Fencing"},
				{Phase: v1alpha1.PhaseFenced, Time: atMicro(-75 * time.Second), Reason: "Fenced", Message: "safe time of 5s passed since detection"},
				{Phase: v1alpha1.PhaseReleased, Time: atMicro(-75 * time.Second), Reason: "AwaitingWorkloads", Message: "out-of-service taint added;\n1 pod released"},
				{Phase: v1alpha1.PhaseWorkloadsReady, Time: atMicro(-71 * time.Second), Reason: "AwaitingNodeReturn"},
			},
			MovedPods: []v1alpha1.MovedPod{{Namespace: "default", Name: "mysql-0", OwnerKind: "StatefulSet", OwnerName: "mysql",
				ReplacementName: "mysql-0", ReplacementNode: "worker-2", ScheduledTime: new(atMicro(-74 * time.Second)), ReadyTime: new(atMicro(-71 * time.Second))}},
			FenceOutput:       "safe time of 5s passed since detection",
			LastHeartbeatSeen: new(atMicro(-120 * time.Second)),
		},
	}
	tk.Status.Downtime = v1alpha1.ComputeDowntime(&tk)
	old := v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-20260301-090000", CreationTimestamp: metav1.NewTime(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "worker-1", Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "lab"},
		Status: v1alpha1.TakeoverStatus{
			Phase: v1alpha1.PhaseRecovered, Reason: "Closed",
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: metav1.NewMicroTime(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), Reason: "NotReady"},
				{Phase: v1alpha1.PhaseRecovered, Time: metav1.NewMicroTime(time.Date(2026, 3, 1, 9, 12, 30, 0, time.UTC)), Reason: "HeartbeatResumed"},
			},
		},
	}
	return snapshot{
		Now: now,
		Nodes: []corev1.Node{
			node("worker-3", "10.0.0.13", corev1.ConditionTrue, planned),
			node("worker-1", "10.0.0.11", corev1.ConditionUnknown, oos),
			node("control-plane-1", "10.0.0.10", corev1.ConditionTrue, cp),
			node("worker-2", "10.0.0.12", corev1.ConditionTrue),
		},
		Leases: []coordinationv1.Lease{lease("control-plane-1", 3*time.Second), lease("worker-1", 95*time.Second), lease("worker-2", 7*time.Second)},
		Pods: []corev1.Pod{
			// The old mysql-0 is gone; its replacement runs on worker-2.
			ownedPod("default", "mysql-0", "worker-2", "StatefulSet", "mysql", "pvc-mysql-0"),
			ownedPod("shop", "orders-7d9f-x2", "worker-2", "ReplicaSet", "orders-7d9f", "orders-data"),
			ownedPod("shop", "web-5c4b-aa", "worker-2", "ReplicaSet", "web-5c4b", "shared-assets"),
			ownedPod("kube-system", "kube-proxy-abc", "worker-1", "DaemonSet", "kube-proxy"),
			ownedPod("shop", "cache-0", "worker-1", "StatefulSet", "cache"),
			ownedPod("shop", "legacy", "worker-3", "", "", "legacy-disk"),
			ownedPod("default", "pending", "", "StatefulSet", "other"),
			done,
		},
		Claims: []corev1.PersistentVolumeClaim{
			claim("default", "pvc-mysql-0", corev1.ReadWriteOnce),
			claim("shop", "orders-data", corev1.ReadWriteOncePod),
			claim("shop", "shared-assets", corev1.ReadWriteMany),
		},
		Takeovers: []v1alpha1.Takeover{tk, old},
	}
}

func TestStatusTable(t *testing.T) {
	rows := nodeStatuses(fixture())
	for _, wide := range []bool{false, true} {
		var b bytes.Buffer
		if err := printStatusTable(&b, rows, wide, false); err != nil {
			t.Fatal(err)
		}
		name := "status.golden"
		if wide {
			name = "status-wide.golden"
		}
		golden(t, name, b.Bytes())
	}
}

func TestStatusNodeTimeline(t *testing.T) {
	s := fixture()
	var rows []NodeStatus
	for _, r := range nodeStatuses(s) {
		if r.Name == "worker-1" {
			rows = append(rows, r)
		}
	}
	var tks []v1alpha1.Takeover
	for _, tk := range s.Takeovers {
		if tk.Spec.NodeName == "worker-1" {
			tks = append(tks, tk)
		}
	}
	sortTakeovers(tks)
	var b bytes.Buffer
	if err := printNodeDetail(&b, s.Now, rows[0], tks); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-node.golden", b.Bytes())

	b.Reset()
	var quiet NodeStatus
	for _, r := range nodeStatuses(s) {
		if r.Name == "worker-3" {
			quiet = r
		}
	}
	if err := printNodeDetail(&b, s.Now, quiet, nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-node-none.golden", b.Bytes())
}

func TestNodeStatusesCountsStatefulPods(t *testing.T) {
	rows := map[string]NodeStatus{}
	for _, r := range nodeStatuses(fixture()) {
		rows[r.Name] = r
	}
	// worker-2: mysql-0 (StatefulSet) and orders (ReadWriteOncePod claim);
	// not web (ReadWriteMany) nor the finished Job pod.
	if got := rows["worker-2"].podNames(); got != "default/mysql-0,shop/orders-7d9f-x2" {
		t.Errorf("worker-2 stateful pods = %s", got)
	}
	// worker-1: cache-0, not the DaemonSet pod.
	if got := rows["worker-1"].podNames(); got != "shop/cache-0" {
		t.Errorf("worker-1 stateful pods = %s", got)
	}
	// worker-3: a bare pod whose claim is unknown counts as ReadWriteOnce.
	if got := rows["worker-3"].podNames(); got != "shop/legacy" {
		t.Errorf("worker-3 stateful pods = %s", got)
	}
	if tk := rows["worker-1"].Takeover; tk == nil || tk.Name != "worker-1-20260314-115840" || tk.ElapsedSeconds != 80 {
		t.Errorf("worker-1 open takeover = %+v, want the newest, 80s old", tk)
	}
	if rows["worker-2"].Takeover != nil {
		t.Errorf("worker-2 has no Takeover, got %+v", rows["worker-2"].Takeover)
	}
}
