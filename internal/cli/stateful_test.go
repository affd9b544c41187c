package cli

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

func TestAtRisk(t *testing.T) {
	claims := rwoClaims([]corev1.PersistentVolumeClaim{
		claim("ns", "rwo", corev1.ReadWriteOnce),
		claim("ns", "rwop", corev1.ReadWriteOncePod),
		claim("ns", "rwx", corev1.ReadWriteMany),
	})
	mirror := ownedPod("ns", "static", "n1", "", "")
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	failed := ownedPod("ns", "sts-1", "n1", "StatefulSet", "sts")
	failed.Status.Phase = corev1.PodFailed
	for _, tc := range []struct {
		pod  corev1.Pod
		want string
	}{
		{ownedPod("ns", "sts-0", "n1", "StatefulSet", "sts"), riskStatefulSet},
		{ownedPod("ns", "dep", "n1", "ReplicaSet", "rs", "rwo"), riskRWOVolume},
		{ownedPod("ns", "dep", "n1", "ReplicaSet", "rs", "rwop"), riskRWOVolume},
		{ownedPod("ns", "dep", "n1", "ReplicaSet", "rs", "rwx"), ""},
		{ownedPod("ns", "dep", "n1", "ReplicaSet", "rs", "rwx", "unknown"), riskRWOVolume},
		{ownedPod("ns", "web", "n1", "ReplicaSet", "rs"), ""},
		{ownedPod("ns", "ds", "n1", "DaemonSet", "ds", "rwo"), ""},
		{mirror, ""},
		{failed, ""},
	} {
		if got := atRisk(&tc.pod, claims); got != tc.want {
			t.Errorf("atRisk(%s/%s, volumes %v) = %q, want %q", tc.pod.Namespace, tc.pod.Name, tc.pod.Spec.Volumes, got, tc.want)
		}
	}
}

func readyPod(p corev1.Pod, node string, ready bool) *corev1.Pod {
	p.Spec.NodeName = node
	p.Status.Phase = corev1.PodRunning
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return &p
}

func TestTrackerStatefulSet(t *testing.T) {
	old := ownedPod("db", "mysql-0", "w1", "StatefulSet", "mysql")
	tr := newTracker([]*movingPod{newMovingPod(&old, riskStatefulSet)})
	t0 := time.Unix(1000, 0)

	// The old pod itself, terminating, changes nothing.
	term := old.DeepCopy()
	term.DeletionTimestamp = new(metav1.NewTime(t0))
	if got := tr.observe(term, t0); len(got) != 0 || len(tr.waiting()) != 1 {
		t.Fatalf("old pod counted: %v", got)
	}
	// The replacement: same name, new UID; pending, then scheduled, then Ready.
	repl := old.DeepCopy()
	repl.UID = "new"
	repl.Spec.NodeName = ""
	if got := tr.observe(repl, t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("unscheduled replacement reported: %v", got)
	}
	if got := tr.observe(readyPod(*repl, "w2", false), t0.Add(2*time.Second)); len(got) != 1 || got[0].what != "scheduled" {
		t.Fatalf("scheduled replacement: %v", got)
	}
	got := tr.observe(readyPod(*repl, "w2", true), t0.Add(5*time.Second))
	if len(got) != 1 || got[0].what != "ready" {
		t.Fatalf("ready replacement: %v", got)
	}
	m := tr.pods[0]
	if m.Node != "w2" || m.Replacement != "mysql-0" || !m.Ready.Equal(t0.Add(5*time.Second)) || len(tr.waiting()) != 0 {
		t.Errorf("after Ready: %+v, waiting %d", m, len(tr.waiting()))
	}
	// Later updates report nothing new.
	if got := tr.observe(readyPod(*repl, "w2", true), t0.Add(9*time.Second)); len(got) != 0 {
		t.Errorf("repeat reported: %v", got)
	}
}

func TestTrackerReplicaSet(t *testing.T) {
	a := ownedPod("shop", "orders-a", "w1", "ReplicaSet", "orders", "data")
	b := ownedPod("shop", "orders-b", "w1", "ReplicaSet", "orders", "data")
	other := ownedPod("shop", "orders-c", "w2", "ReplicaSet", "orders", "data")
	tr := newTracker([]*movingPod{newMovingPod(&a, riskRWOVolume), newMovingPod(&b, riskRWOVolume)})
	tr.noteExisting(&other)
	t0 := time.Unix(1000, 0)
	// A pod of the ReplicaSet that existed before is not a replacement.
	if got := tr.observe(readyPod(other, "w2", true), t0); len(got) != 0 {
		t.Fatalf("existing pod taken for a replacement: %v", got)
	}
	// A new pod landing back on the node it left does not count.
	back := ownedPod("shop", "orders-x", "", "ReplicaSet", "orders", "data")
	if got := tr.observe(readyPod(back, "w1", true), t0); len(got) != 0 || tr.pods[0].Last != "recreated on the node it left (w1)" {
		t.Fatalf("replacement on the old node counted: %v, last %q", got, tr.pods[0].Last)
	}
	// Two new pods replace the two moved ones, one each.
	n1 := ownedPod("shop", "orders-d", "", "ReplicaSet", "orders", "data")
	n2 := ownedPod("shop", "orders-e", "", "ReplicaSet", "orders", "data")
	tr.observe(readyPod(n1, "w3", true), t0.Add(time.Second))
	if len(tr.waiting()) != 1 {
		t.Fatalf("one replacement Ready: waiting %d, want 1", len(tr.waiting()))
	}
	// Seeing the same replacement again does not satisfy the second pod.
	tr.observe(readyPod(n1, "w3", true), t0.Add(2*time.Second))
	if len(tr.waiting()) != 1 {
		t.Fatalf("one replacement counted twice")
	}
	// A replacement deleted before it was Ready is forgotten.
	tr.observe(readyPod(n2, "w2", false), t0.Add(3*time.Second))
	if got := tr.forget(readyPod(n2, "w2", false)); len(got) != 1 || got[0].what != "lost" ||
		got[0].describe() != "shop/orders-b: replacement orders-e deleted before it was Ready; waiting for the next" {
		t.Fatalf("forget reported %v", got)
	}
	if w := tr.waiting(); len(w) != 1 || w[0].Replacement != "" {
		t.Fatalf("after forget: %+v", w)
	}
	n3 := ownedPod("shop", "orders-f", "", "ReplicaSet", "orders", "data")
	tr.observe(readyPod(n3, "w2", true), t0.Add(4*time.Second))
	if len(tr.waiting()) != 0 {
		t.Fatalf("both replaced, still waiting for %v", tr.waiting())
	}
	if tr.pods[0].Replacement == tr.pods[1].Replacement {
		t.Errorf("both moved pods claim replacement %s", tr.pods[0].Replacement)
	}
}

func TestTrackerBarePod(t *testing.T) {
	bare := ownedPod("ns", "legacy", "w1", "", "", "disk")
	tr := newTracker([]*movingPod{newMovingPod(&bare, riskRWOVolume)})
	if len(tr.waiting()) != 0 {
		t.Errorf("a pod no controller recreates is waited for")
	}
}

func TestEvictionErrorsNotesPDBBlocks(t *testing.T) {
	var calls []string
	e := &evictionErrors{onBlocked: func(ns, name string) { calls = append(calls, ns+"/"+name) }}
	line := `error when evicting pods/"mysql-0" -n "default" (will retry after 2s): Cannot evict pod as it would violate the pod's disruption budget.` + "\n"
	for range 3 {
		fmt.Fprint(e, line)
	}
	fmt.Fprint(e, `error when evicting pods/"web" -n "shop" (will retry after 2s): the server was unable to return a response`+"\n")
	if got := e.blockedPods(); len(got) != 1 || got[0] != "default/mysql-0" {
		t.Errorf("blocked = %v, want [default/mysql-0]", got)
	}
	if len(calls) != 1 {
		t.Errorf("onBlocked called %d times, want once", len(calls))
	}
}

func TestReadmitBlockers(t *testing.T) {
	ready := node("w1", "10.0.0.1", corev1.ConditionTrue)
	down := node("w1", "10.0.0.1", corev1.ConditionUnknown)
	open := v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-1"}, Status: v1alpha1.TakeoverStatus{Phase: v1alpha1.PhaseFenced, Reason: "Fenced"}}
	closed := v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-0"}, Status: v1alpha1.TakeoverStatus{Phase: v1alpha1.PhaseRecovered}}
	if b := readmitBlockers(&ready, []v1alpha1.Takeover{closed}); len(b) != 0 {
		t.Errorf("healthy node with a closed Takeover: %v", b)
	}
	if b := readmitBlockers(&ready, []v1alpha1.Takeover{closed, open}); len(b) != 1 || b[0] != "Takeover w1-1 is still open (phase Fenced, Fenced): the controller removes its taint itself once the node has been back and healthy for its healthyDelay" {
		t.Errorf("open Takeover: %v", b)
	}
	if b := readmitBlockers(&down, nil); len(b) != 1 || b[0] != "node w1 is not Ready (Ready=Unknown)" {
		t.Errorf("node not Ready: %v", b)
	}
	paused := open
	paused.Status.Phase = v1alpha1.PhasePaused
	if b := readmitBlockers(&down, []v1alpha1.Takeover{paused}); len(b) != 2 {
		t.Errorf("paused Takeover on a down node: %v", b)
	}
}

func TestMovingPodOwner(t *testing.T) {
	p := ownedPod("ns", "x", "w1", "StatefulSet", "db")
	m := newMovingPod(&p, riskStatefulSet)
	if m.owner() != "StatefulSet/db" || m.OwnerUID != types.UID("uid-db") || m.From != "w1" {
		t.Errorf("moving pod %+v", m)
	}
}
