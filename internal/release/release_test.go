package release

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func node(taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w1", UID: "uid-w1", ResourceVersion: "7"},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown, LastHeartbeatTime: metav1.NewTime(t0),
		}}},
	}
}

func lease(renew time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "w1", Namespace: NodeLeaseNamespace},
		Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: renew}}}
}

func TestLiveComparesTheHeartbeat(t *testing.T) {
	ctx := context.Background()
	n, l := node(), lease(t0)
	want := Heartbeat(n, l)
	c := fake.NewClientset(n, l)
	if got, err := Live(ctx, c, "w1", want); err != nil || got.UID != "uid-w1" {
		t.Fatalf("unchanged heartbeat: node %v, err %v", got, err)
	}
	l2 := lease(t0.Add(10 * time.Second))
	if _, err := c.CoordinationV1().Leases(NodeLeaseNamespace).Update(ctx, l2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := Live(ctx, c, "w1", want); !errors.Is(err, ErrHeartbeat) || got == nil {
		t.Fatalf("renewed Lease: err %v (node %v), want ErrHeartbeat with the node", err, got)
	}
	if _, err := Live(ctx, fake.NewClientset(l), "w1", want); !apierrors.IsNotFound(err) {
		t.Fatalf("deleted Node: err %v, want NotFound", err)
	}
	if _, err := Live(ctx, fake.NewClientset(n), "w1", Heartbeat(n, nil)); err != nil {
		t.Fatalf("node without a Lease, unchanged: %v", err)
	}
}

// patchOf returns the merge patch of the first patch action on nodes.
func patchOf(t *testing.T, c *fake.Clientset) map[string]any {
	t.Helper()
	for _, a := range c.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "nodes" {
			var m map[string]any
			if err := json.Unmarshal(p.GetPatch(), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatal("no patch of a node")
	return nil
}

func TestTaintCarriesThePreconditionAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	own := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	n := node(own)
	c := fake.NewClientset(n)
	if err := Taint(ctx, c, n, OutOfServiceTaint); err != nil {
		t.Fatal(err)
	}
	m := patchOf(t, c)
	meta := m["metadata"].(map[string]any)
	if meta["resourceVersion"] != "7" || meta["uid"] != "uid-w1" {
		t.Fatalf("patch preconditions %v, want the live read's resourceVersion and UID", meta)
	}
	if taints := m["spec"].(map[string]any)["taints"].([]any); len(taints) != 2 {
		t.Fatalf("taints %v, want the node's own and the out-of-service taint", taints)
	}
	c.ClearActions()
	if err := Taint(ctx, c, node(own, OutOfServiceTaint), OutOfServiceTaint); err != nil || len(c.Actions()) != 0 {
		t.Fatalf("tainting a tainted node: err %v, calls %v; want none", err, c.Actions())
	}
}

func TestUntaintKeepsOtherTaints(t *testing.T) {
	ctx := context.Background()
	own := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	c := fake.NewClientset(node(own, OutOfServiceTaint, FencedTaint))
	if err := Untaint(ctx, c, "w1"); err != nil {
		t.Fatal(err)
	}
	taints := patchOf(t, c)["spec"].(map[string]any)["taints"].([]any)
	if len(taints) != 1 || taints[0].(map[string]any)["key"] != "dedicated" {
		t.Fatalf("taints after Untaint %v, want only the node's own", taints)
	}
	if err := Untaint(ctx, fake.NewClientset(), "gone"); err != nil {
		t.Fatalf("untaint of a deleted node: %v", err)
	}
}

func TestDeleteNodeCarriesThePrecondition(t *testing.T) {
	n := node()
	c := fake.NewClientset(n)
	if err := DeleteNode(context.Background(), c, n); err != nil {
		t.Fatal(err)
	}
	d := c.Actions()[0].(k8stesting.DeleteAction)
	pre := d.GetDeleteOptions().Preconditions
	if pre == nil || *pre.UID != "uid-w1" || *pre.ResourceVersion != "7" {
		t.Fatalf("preconditions %+v, want UID and resourceVersion", pre)
	}
	if err := DeleteNode(context.Background(), fake.NewClientset(), n); err != nil {
		t.Fatalf("deleting a deleted node: %v", err)
	}
}

func pod(name, uid, node string, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: name, UID: uidOf(uid)}, Spec: corev1.PodSpec{NodeName: node}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func uidOf(s string) types.UID { return types.UID(s) }

func TestPodsAndAttachments(t *testing.T) {
	ctx := context.Background()
	sts := &metav1.OwnerReference{Kind: "StatefulSet", Name: "mysql", UID: "sts", Controller: ptr.To(true)}
	ds := &metav1.OwnerReference{Kind: "DaemonSet", Name: "proxy", UID: "ds", Controller: ptr.To(true)}
	mirror := pod("etcd-w1", "m", "w1", nil)
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	objs := []runtime.Object{pod("mysql-0", "p0", "w1", sts), pod("proxy-w1", "px", "w1", ds), mirror, pod("mysql-1", "p1", "w2", sts)}
	c := fake.NewClientset(objs...)
	// The fake clientset ignores field selectors: PodsOnNode's filtering of
	// DaemonSet and mirror pods is what is checked here.
	pods, err := PodsOnNode(ctx, c, "w1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pods {
		if BelongsToNode(&p) {
			t.Fatalf("PodsOnNode returned %s, which lives and dies with its node", p.Name)
		}
		found = found || p.Name == "mysql-0"
	}
	if !found {
		t.Fatalf("PodsOnNode = %d pods without mysql-0", len(pods))
	}
	d := Describe(objs[0].(*corev1.Pod))
	if d.OwnerKind != "StatefulSet" || d.OwnerUID != "sts" || d.Name != "mysql-0" {
		t.Fatalf("Describe = %+v", d)
	}
	p0 := objs[0].(*corev1.Pod)
	if err := ForceDeletePod(ctx, c, p0); err != nil {
		t.Fatal(err)
	}
	var del k8stesting.DeleteAction
	for _, a := range c.Actions() {
		if x, ok := a.(k8stesting.DeleteAction); ok {
			del = x
		}
	}
	if o := del.GetDeleteOptions(); o.GracePeriodSeconds == nil || *o.GracePeriodSeconds != 0 || o.Preconditions == nil || *o.Preconditions.UID != "p0" {
		t.Fatalf("delete options %+v, want grace 0 and the pod's UID as precondition", o)
	}
	if err := ForceDeletePod(ctx, c, p0); err != nil {
		t.Fatalf("deleting a deleted pod: %v", err)
	}
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va-1", UID: "va-uid"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "w1"}}
	c = fake.NewClientset(va)
	names, err := DeleteVolumeAttachments(ctx, c, []*storagev1.VolumeAttachment{va, {ObjectMeta: metav1.ObjectMeta{Name: "gone", UID: "g"}}})
	if err != nil || len(names) != 2 {
		t.Fatalf("DeleteVolumeAttachments = %v, %v; want both names (a missing one counts as deleted)", names, err)
	}
}
