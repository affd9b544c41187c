package controller

// The reconcile test harness, after kubernetes/sample-controller's
// controller_test.go: the cluster lives on fake clients, the informer
// caches are filled from them by hand (no informer runs), the controller's
// clock is a fake one, and the fencer is fence.Fake. A test advances the
// clock, changes the cluster, and calls step, which re-lists the fake
// clients into the caches (as an informer would after a sync) and runs one
// reconcile of a node. Assertions read the API calls the fake clientset
// recorded, the Takeover as the API server holds it, and the fencer's
// calls.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/metrics"
	"github.com/liberator-dev/liberator/internal/release"
)

// fixtureStart is the fake clock's time when a fixture is built.
var fixtureStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The fixture's nodes: failedNode is the one the cases take down; the
// others stay healthy (four eligible nodes, so one failure is no storm).
const failedNode = "w1"

var fixtureNodes = []string{"w1", "w2", "w3", "w4"}

// A pod's owners in the fixture.
var (
	mysqlSTS  = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "mysql", UID: "uid-sts-mysql", Controller: ptr.To(true)}
	webRS     = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-6f9c7d", UID: "uid-rs-web", Controller: ptr.To(true)}
	kubeProxy = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "kube-proxy", UID: "uid-ds-kube-proxy", Controller: ptr.To(true)}
)

var (
	podsGVR   = corev1.SchemeGroupVersion.WithResource("pods")
	podsGVK   = corev1.SchemeGroupVersion.WithKind("Pod")
	nodesGVR  = corev1.SchemeGroupVersion.WithResource("nodes")
	nodesGVK  = corev1.SchemeGroupVersion.WithKind("Node")
	leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")
	leasesGVK = coordinationv1.SchemeGroupVersion.WithKind("Lease")
	vasGVR    = storagev1.SchemeGroupVersion.WithResource("volumeattachments")
	vasGVK    = storagev1.SchemeGroupVersion.WithKind("VolumeAttachment")
)

type fixture struct {
	t    *testing.T
	cfg  *config.Config
	kube *kubefake.Clientset
	// tracker holds the clientset's objects; the harness reads and writes
	// it directly, so kube.Actions() records only the controller's calls.
	tracker k8stesting.ObjectTracker
	client  client.WithWatch
	clock   *clocktesting.FakeClock
	fencer  *fence.Fake
	rec     *record.FakeRecorder
	// recorder, when set, is the controller's recorder instead of rec.
	recorder record.EventRecorder
	c        *Controller

	// down holds the nodes whose kubelet is not renewing its Lease; advance
	// renews the others'.
	down map[string]bool
	// events collects the recorder's events, drained after every step.
	events []string
	// renewals makes each renewTime the kubelets write a new value.
	renewals int
	// replWait is the controller's Options.ReplacementWait.
	replWait time.Duration
}

// newFixture builds a cluster of fixtureNodes (Ready, Leases renewed), the
// given pods and VolumeAttachments, and a controller over it whose caches
// have been synced once at fixtureStart.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.Fencing.Classes = []config.FenceClass{{
		Name: "lab", Provider: config.ProviderWait,
		Wait:    &config.WaitFence{SafeTime: config.Duration{Duration: 5 * time.Second}},
		Timeout: config.Duration{Duration: 10 * time.Second},
	}}

	// A fake clientset on a plain object tracker: NewClientset's
	// field-managed tracker builds a REST mapper on every write, and the
	// cases write every healthy node's Lease each 10 s of fake time.
	tracker := k8stesting.NewObjectTracker(clientgoscheme.Scheme, clientgoscheme.Codecs.UniversalDecoder())
	kube := &kubefake.Clientset{}
	kube.AddReactor("*", "*", k8stesting.ObjectReaction(tracker))
	// The fake clientset ignores field selectors; the release step lists a
	// node's pods by spec.nodeName, so answer that list as the API server
	// would.
	kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sel := a.(k8stesting.ListAction).GetListRestrictions().Fields
		if sel == nil || sel.Empty() {
			return false, nil, nil
		}
		o, err := tracker.List(podsGVR, podsGVK, a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		l := o.(*corev1.PodList)
		var keep []corev1.Pod
		for _, p := range l.Items {
			if sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName, "metadata.name": p.Name, "metadata.namespace": p.Namespace}) {
				keep = append(keep, p)
			}
		}
		l.Items = keep
		return true, l, nil
	})

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cl := ctrlfake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.Takeover{}).
		WithIndex(&v1alpha1.Takeover{}, "spec.nodeName", func(o client.Object) []string {
			return []string{o.(*v1alpha1.Takeover).Spec.NodeName}
		}).
		Build()

	f := &fixture{
		t: t, cfg: cfg, kube: kube, tracker: tracker, client: cl,
		clock:  clocktesting.NewFakeClock(fixtureStart),
		fencer: &fence.Fake{Result: fence.Result{Done: true, Output: "safe time of 5s passed since detection"}},
		rec:    record.NewFakeRecorder(1000),
		down:   map[string]bool{},
		// No StatefulSet controller recreates pods here: the release does
		// not wait for replacements (outofservice_test.go covers the wait).
		replWait: -1,
	}
	for _, name := range fixtureNodes {
		f.create(newNode(name))
		f.create(newLease(name, fixtureStart.Add(-5*time.Second)))
	}
	for _, o := range objs {
		f.create(o)
	}
	f.c = f.newController()
	f.sync()
	return f
}

// newController builds a controller on the fixture's clients, clock and
// fencer, with empty caches and a new health tracker: what a replica that
// has just become leader has before its informers list.
func (f *fixture) newController() *Controller {
	f.t.Helper()
	var rec record.EventRecorder = f.rec
	if f.recorder != nil {
		rec = f.recorder
	}
	c, err := New(Options{
		Config: f.cfg, Kube: f.kube, Client: f.client, Clock: f.clock, Metrics: metrics.New(), ReplacementWait: f.replWait,
		Recorder: rec, Log: testr.NewWithOptions(f.t, testr.Options{Verbosity: 2}),
		Fencer: func(config.FenceClass) (fence.Fencer, error) { return f.fencer, nil },
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// newLeader replaces the controller with a freshly built one and syncs its
// caches, as after a leader election.
func (f *fixture) newLeader() {
	f.t.Helper()
	f.c = f.newController()
	f.sync()
}

func (f *fixture) ctx() context.Context { return context.Background() }

// create puts an object on the fake clientset (without recording an
// action).
func (f *fixture) create(o runtime.Object) {
	f.t.Helper()
	if err := f.tracker.Add(o); err != nil {
		f.t.Fatal(err)
	}
}

// newNode is a Ready worker node with an unrelated taint of its own.
func newNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectPreferNoSchedule}}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.NewTime(fixtureStart.Add(-5 * time.Second))}},
			NodeInfo: corev1.NodeSystemInfo{BootID: "boot-" + name + "-1"},
		},
	}
}

func newLease(name string, renew time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: release.NodeLeaseNamespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime: &metav1.MicroTime{Time: renew}},
	}
}

// newPod is a Running pod bound to node; ready sets its Ready condition.
// created is its creation time relative to fixtureStart.
func newPod(ns, name, uid, node string, owner metav1.OwnerReference, ready bool, created time.Duration) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid),
			CreationTimestamp: metav1.NewTime(fixtureStart.Add(created)), OwnerReferences: []metav1.OwnerReference{owner}},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

// mysqlPod is the StatefulSet pod db/mysql-0 with its claim.
func mysqlPod(uid, node string, ready bool) *corev1.Pod {
	p := newPod("db", "mysql-0", uid, node, mysqlSTS, ready, -time.Hour)
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-mysql-0"}}}}
	return p
}

func newVA(name, node, pv string) *storagev1.VolumeAttachment {
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "csi.example.com", NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(pv)}},
		Status: storagev1.VolumeAttachmentStatus{Attached: true},
	}
}

// statefulWorkload is the seed's case: mysql-0 on the failed node with its
// volume attached there, a kube-proxy pod that lives and dies with the
// node, and an attachment on a healthy node that is not liberator's
// business.
func statefulWorkload() []runtime.Object {
	return []runtime.Object{
		mysqlPod("uid-mysql-0-a", failedNode, true),
		newPod("kube-system", "kube-proxy-w1", "uid-kube-proxy-w1", failedNode, kubeProxy, true, -2*time.Hour),
		newVA("csi-va-w1", failedNode, "pvc-mysql-0"),
		newVA("csi-va-w2", "w2", "pvc-other"),
	}
}

// sync copies the fake clients' objects into the informer caches, as the
// informers would after a re-list, and runs the node and Lease handlers'
// logic so the health tracker observes them at the fake clock's time.
func (f *fixture) sync() {
	f.t.Helper()
	list := func(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, ns string) []runtime.Object {
		o, err := f.tracker.List(gvr, gvk, ns)
		if err != nil {
			f.t.Fatal(err)
		}
		items, err := meta.ExtractList(o)
		if err != nil {
			f.t.Fatal(err)
		}
		return items
	}
	nodes := list(nodesGVR, nodesGVK, "")
	leases := list(leasesGVR, leasesGVK, release.NodeLeaseNamespace)
	pods := list(podsGVR, podsGVK, "")
	vas := list(vasGVR, vasGVK, "")
	var tl v1alpha1.TakeoverList
	if err := f.client.List(f.ctx(), &tl); err != nil {
		f.t.Fatal(err)
	}
	var tks []runtime.Object
	for i := range tl.Items {
		tks = append(tks, &tl.Items[i])
	}

	f.replace(f.c.nodes.GetIndexer(), nodes)
	f.replace(f.c.leases.GetIndexer(), leases)
	f.replace(f.c.pods.GetIndexer(), pods)
	f.replace(f.c.vas.GetIndexer(), vas)
	f.replace(f.c.takeovers.GetIndexer(), tks)

	window := f.cfg.UnhealthyAfter.Duration
	for _, o := range nodes {
		f.c.onNode(o)
	}
	for _, o := range leases {
		f.c.onLease(o, window)
	}
}

// replace makes store hold exactly objs, put through the informers'
// transform.
func (f *fixture) replace(store cache.Indexer, objs []runtime.Object) {
	f.t.Helper()
	want := map[string]bool{}
	for _, o := range objs {
		s, err := slim(o.DeepCopyObject())
		if err != nil {
			f.t.Fatal(err)
		}
		key, err := cache.MetaNamespaceKeyFunc(s)
		if err != nil {
			f.t.Fatal(err)
		}
		want[key] = true
		if err := store.Update(s); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, key := range store.ListKeys() {
		if want[key] {
			continue
		}
		if o, ok, _ := store.GetByKey(key); ok {
			if err := store.Delete(o); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// step syncs the caches and reconciles node once.
func (f *fixture) step(node string) (time.Duration, error) {
	f.t.Helper()
	f.sync()
	return f.reconcile(node)
}

// reconcile reconciles node once on the caches as they are, then checks
// safety rule 1: nothing of a node is released unless its Takeover's
// timeline holds Fenced.
func (f *fixture) reconcile(node string) (time.Duration, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx(), 10*time.Second)
	defer cancel()
	after, err := f.c.reconcile(ctx, node)
	f.drainEvents()
	if f.released(node) {
		if tk := f.takeover(node); tk == nil || tk.PhaseTime(v1alpha1.PhaseFenced) == nil {
			f.t.Fatalf("node %s released without Fenced in its Takeover's timeline: %s; actions %v", node, timeline(tk), f.destructive(node))
		}
	}
	return after, err
}

// mustStep is step, failing the test on an error.
func (f *fixture) mustStep(node string) time.Duration {
	f.t.Helper()
	after, err := f.step(node)
	if err != nil {
		f.t.Fatalf("reconcile %s: %v", node, err)
	}
	return after
}

// stepUntil steps node until its Takeover is in phase, at most n times.
func (f *fixture) stepUntil(node string, phase v1alpha1.Phase, n int) *v1alpha1.Takeover {
	f.t.Helper()
	for range n {
		f.mustStep(node)
		if tk := f.takeover(node); tk != nil && tk.Status.Phase == phase {
			return tk
		}
	}
	tk := f.takeover(node)
	f.t.Fatalf("node %s: Takeover not in phase %s after %d steps: %s", node, phase, n, timeline(tk))
	return nil
}

func (f *fixture) drainEvents() {
	for {
		select {
		case e := <-f.rec.Events:
			f.events = append(f.events, e)
		default:
			return
		}
	}
}

// hasEvent reports whether an event of that type and reason was recorded.
func (f *fixture) hasEvent(typ, reason string) bool {
	for _, e := range f.events {
		if strings.HasPrefix(e, typ+" "+reason+" ") {
			return true
		}
	}
	return false
}

// advance moves the fake clock on by d, in steps of at most 10 s (the
// kubelet's renewal interval), renewing the Leases of the nodes that are
// up, as their kubelets would.
func (f *fixture) advance(d time.Duration) {
	f.t.Helper()
	for d > 0 {
		s := min(d, 10*time.Second)
		f.clock.Step(s)
		d -= s
		for _, name := range fixtureNodes {
			if !f.down[name] {
				f.renewLease(name)
			}
		}
	}
}

// fail stops node's kubelet: its Lease is no longer renewed.
func (f *fixture) fail(node string) { f.down[node] = true }

// revive starts node's kubelet again: its Lease is renewed now and from
// then on.
func (f *fixture) revive(node string) {
	f.t.Helper()
	delete(f.down, node)
	f.renewLease(node)
}

// renewLease writes a new renewTime on node's Lease on the API server and
// lets the controller observe it now.
func (f *fixture) renewLease(node string) {
	f.t.Helper()
	l := f.heartbeatOnServer(node)
	_ = f.c.leases.GetIndexer().Update(l.DeepCopy())
	f.c.onLease(l, f.cfg.UnhealthyAfter.Duration)
}

// heartbeatOnServer writes a new renewTime on node's Lease on the API
// server only: the controller's cache and health tracker do not see it
// until the next sync.
func (f *fixture) heartbeatOnServer(node string) *coordinationv1.Lease {
	f.t.Helper()
	o, err := f.tracker.Get(leasesGVR, release.NodeLeaseNamespace, node)
	if err != nil {
		f.t.Fatal(err)
	}
	l := o.(*coordinationv1.Lease).DeepCopy()
	f.renewals++
	// The kubelet's clock, not ours: only the value changing matters.
	l.Spec.RenewTime = &metav1.MicroTime{Time: f.clock.Now().Add(time.Duration(f.renewals) * time.Microsecond)}
	f.update(leasesGVR, l, release.NodeLeaseNamespace)
	return l
}

// setNodeReady sets node's Ready condition. Going not Ready keeps the last
// heartbeat time, as the node lifecycle controller does; going Ready is the
// kubelet posting a heartbeat. bootID, when set, is the node's new boot ID.
func (f *fixture) setNodeReady(node string, status corev1.ConditionStatus, bootID string) {
	f.t.Helper()
	n := f.node(node)
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.NewTime(f.clock.Now())
		}
		c.Status = status
		if status == corev1.ConditionTrue {
			c.LastHeartbeatTime = metav1.NewTime(f.clock.Now())
		}
	}
	if bootID != "" {
		n.Status.NodeInfo.BootID = bootID
	}
	f.update(nodesGVR, n, "")
	f.observeNode(n)
}

// observeNode delivers a node's update to the controller now, as its
// informer would.
func (f *fixture) observeNode(n *corev1.Node) {
	f.t.Helper()
	s, _ := slim(n.DeepCopy())
	if err := f.c.nodes.GetIndexer().Update(s); err != nil {
		f.t.Fatal(err)
	}
	f.c.onNode(s)
}

// update replaces an object on the fake clientset (without recording an
// action).
func (f *fixture) update(gvr schema.GroupVersionResource, o runtime.Object, ns string) {
	f.t.Helper()
	if err := f.tracker.Update(gvr, o, ns); err != nil {
		f.t.Fatal(err)
	}
}

// putPod creates or replaces a pod on the API server.
func (f *fixture) putPod(p *corev1.Pod) {
	f.t.Helper()
	if _, err := f.tracker.Get(podsGVR, p.Namespace, p.Name); err == nil {
		f.update(podsGVR, p, p.Namespace)
		return
	}
	f.create(p)
}

// podReady makes an existing pod Ready.
func (f *fixture) podReady(ns, name string) {
	f.t.Helper()
	o, err := f.tracker.Get(podsGVR, ns, name)
	if err != nil {
		f.t.Fatal(err)
	}
	p := o.(*corev1.Pod).DeepCopy()
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	f.update(podsGVR, p, ns)
}

// putTakeover stores a Takeover with its status, as a previous leader left
// it.
func (f *fixture) putTakeover(tk *v1alpha1.Takeover) {
	f.t.Helper()
	status := *tk.Status.DeepCopy()
	if err := f.client.Create(f.ctx(), tk); err != nil {
		f.t.Fatal(err)
	}
	tk.Status = status
	if err := f.client.Status().Update(f.ctx(), tk); err != nil {
		f.t.Fatal(err)
	}
}

// takeover reads node's newest Takeover from the API server, or nil.
func (f *fixture) takeover(node string) *v1alpha1.Takeover {
	f.t.Helper()
	var l v1alpha1.TakeoverList
	if err := f.client.List(f.ctx(), &l); err != nil {
		f.t.Fatal(err)
	}
	var out *v1alpha1.Takeover
	for i := range l.Items {
		tk := &l.Items[i]
		if tk.Spec.NodeName == node && (out == nil || tk.Name > out.Name) {
			out = tk
		}
	}
	return out
}

func (f *fixture) mustTakeover(node string) *v1alpha1.Takeover {
	f.t.Helper()
	tk := f.takeover(node)
	if tk == nil {
		f.t.Fatalf("node %s has no Takeover", node)
	}
	return tk
}

// node reads a Node from the API server.
func (f *fixture) node(name string) *corev1.Node {
	f.t.Helper()
	o, err := f.tracker.Get(nodesGVR, "", name)
	if err != nil {
		f.t.Fatal(err)
	}
	return o.(*corev1.Node).DeepCopy()
}

// timeline is a Takeover's timeline as "Phase/Reason" entries.
func timeline(tk *v1alpha1.Takeover) []string {
	if tk == nil {
		return nil
	}
	out := make([]string, 0, len(tk.Status.Timeline))
	for _, tr := range tk.Status.Timeline {
		out = append(out, string(tr.Phase)+"/"+tr.Reason)
	}
	return out
}

// checkTimeline fails unless tk's timeline is exactly want.
func checkTimeline(t *testing.T, tk *v1alpha1.Takeover, want ...string) {
	t.Helper()
	if got := timeline(tk); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("timeline\n got: %v\nwant: %v", got, want)
	}
}

// Recorded API calls.

// taintPatches returns the taint lists written to node's spec (status
// patches, such as the FenceReady condition, are not counted).
func (f *fixture) taintPatches(node string) [][]corev1.Taint {
	f.t.Helper()
	var out [][]corev1.Taint
	for _, a := range f.kube.Actions() {
		p, ok := a.(k8stesting.PatchAction)
		if !ok || !a.Matches("patch", "nodes") || a.GetSubresource() != "" || p.GetName() != node {
			continue
		}
		var body struct {
			Spec struct {
				Taints *[]corev1.Taint `json:"taints"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(p.GetPatch(), &body); err != nil {
			f.t.Fatalf("patch of node %s: %v: %s", node, err, p.GetPatch())
		}
		if body.Spec.Taints != nil {
			out = append(out, *body.Spec.Taints)
		}
	}
	return out
}

// deletion is one recorded delete call.
type deletion struct {
	resource, key string
	grace         *int64
}

func (d deletion) String() string {
	g := "default"
	if d.grace != nil {
		g = fmt.Sprint(*d.grace)
	}
	return fmt.Sprintf("delete %s %s (grace %s)", d.resource, d.key, g)
}

// deletes returns the recorded deletions of resource.
func (f *fixture) deletes(resource string) []deletion {
	var out []deletion
	for _, a := range f.kube.Actions() {
		d, ok := a.(k8stesting.DeleteAction)
		if !ok || a.GetResource().Resource != resource {
			continue
		}
		key := d.GetName()
		if a.GetNamespace() != "" {
			key = a.GetNamespace() + "/" + key
		}
		out = append(out, deletion{resource: resource, key: key, grace: d.GetDeleteOptions().GracePeriodSeconds})
	}
	return out
}

func keys(ds []deletion) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.key)
	}
	sort.Strings(out)
	return out
}

// destructive lists the calls that release a node's workloads: a patch of
// its taints, its deletion, deletions of its pods and of VolumeAttachments.
func (f *fixture) destructive(node string) []string {
	var out []string
	for _, ts := range f.taintPatches(node) {
		out = append(out, fmt.Sprintf("patch node %s taints %v", node, taintKeys(ts)))
	}
	for _, r := range []string{"nodes", "pods", "volumeattachments"} {
		for _, d := range f.deletes(r) {
			out = append(out, d.String())
		}
	}
	return out
}

// released reports whether anything of node was released.
func (f *fixture) released(node string) bool { return len(f.destructive(node)) > 0 }

func taintKeys(ts []corev1.Taint) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Key)
	}
	return out
}

func hasTaint(ts []corev1.Taint, key string) bool {
	for _, t := range ts {
		if t.Key == key {
			return true
		}
	}
	return false
}

// liveReads counts the Gets of node's Lease from the API server (the
// release step's re-read).
func (f *fixture) liveReads(node string) int {
	n := 0
	for _, a := range f.kube.Actions() {
		if g, ok := a.(k8stesting.GetAction); ok && a.Matches("get", "leases") && g.GetName() == node {
			n++
		}
	}
	return n
}
