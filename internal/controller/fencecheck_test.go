package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/metrics"
)

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

type checkBed struct {
	c      *Controller
	kube   *kubefake.Clientset
	power  *fence.Fake
	events chan string
	clk    *clocktesting.FakeClock
}

func newCheckBed(t *testing.T, objs ...client.Object) *checkBed {
	t.Helper()
	cfg := config.Default()
	cfg.Fencing.Classes = []config.FenceClass{
		{Name: "ipmi", Provider: config.ProviderFenceAgent, Agent: "fence_ipmilan", Action: config.ActionOff, NodeNames: []string{"w1", "w2"},
			PowerOnAfterTakeover: true, Timeout: config.Duration{Duration: time.Second}},
		{Name: "lab", Provider: config.ProviderWait, NodeSelector: "lab=true", Wait: &config.WaitFence{SafeTime: config.Duration{Duration: 10 * time.Second}}, Timeout: config.Duration{Duration: time.Second}},
		{Name: "stateless", Provider: config.ProviderNone, ReleaseUnproven: true, NodeNames: []string{"w4"}, Timeout: config.Duration{Duration: time.Second}},
		{Name: "manual", Provider: config.ProviderNone, NodeNames: []string{"w6"}, Timeout: config.Duration{Duration: time.Second}},
	}
	nodes := []*corev1.Node{}
	for _, n := range []struct {
		name   string
		labels map[string]string
	}{{"w1", nil}, {"w2", nil}, {"w3", map[string]string{"lab": "true"}}, {"w4", nil}, {"w5", nil}, {"w6", nil},
		{"cp", map[string]string{"node-role.kubernetes.io/control-plane": ""}}} {
		nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, UID: types.UID("uid-" + n.name), Labels: n.labels}})
	}
	kube := kubefake.NewClientset()
	for _, n := range nodes {
		if _, err := kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&v1alpha1.Takeover{}).Build()
	power := &fence.Fake{Result: fence.Result{Done: true, PowerOff: true}, NodeErr: map[string]error{}, NodeOff: map[string]bool{}}
	rec := record.NewFakeRecorder(100)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := New(Options{Config: cfg, Kube: kube, Client: cl, Clock: clk, Metrics: metrics.New(), Recorder: rec,
		Fencer: func(fc config.FenceClass) (fence.Fencer, error) {
			if fc.Provider == config.ProviderFenceAgent || fc.Provider == config.ProviderRedfish {
				return power, nil
			}
			return fence.For(fc)
		}})
	if err != nil {
		t.Fatal(err)
	}
	b := &checkBed{c: c, kube: kube, power: power, events: rec.Events, clk: clk}
	b.syncNodes(t)
	return b
}

// syncNodes copies the API server's nodes into the informer cache (the
// tests run no informers).
func (b *checkBed) syncNodes(t *testing.T) {
	t.Helper()
	l, err := b.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.Items {
		if err := b.c.nodes.GetStore().Update(&l.Items[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *checkBed) condition(t *testing.T, node string) *corev1.NodeCondition {
	t.Helper()
	n, err := b.kube.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == FenceReadyCondition {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (b *checkBed) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-b.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (b *checkBed) patches() int {
	n := 0
	for _, a := range b.kube.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && p.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func TestFenceCheckPublishesCondition(t *testing.T) {
	b := newCheckBed(t)
	b.power.NodeErr["w2"] = errors.New("fence_ipmilan status failed (exit 1): Error: Unable to establish IPMI v2 / RMCP+ session")
	ctx := context.Background()
	b.c.checkFences(ctx)

	want := map[string]struct {
		status corev1.ConditionStatus
		reason string
		msg    string
	}{
		"w1": {corev1.ConditionTrue, ReasonFencePathOK, "power is on"},
		"w2": {corev1.ConditionFalse, ReasonFenceCheckFailed, "Unable to establish IPMI v2 / RMCP+ session"},
		"w3": {corev1.ConditionTrue, ReasonWaitProvider, "fenced 10s after detection"},
		"w4": {corev1.ConditionTrue, ReasonNoFencing, "without being proven off"},
		"w5": {corev1.ConditionFalse, ReasonNoFenceClass, "never released"},
		"w6": {corev1.ConditionTrue, ReasonConfirmOffRequired, "released only once an operator who has made sure that it is off runs liberator confirm-off w6"},
	}
	for node, w := range want {
		cond := b.condition(t, node)
		if cond == nil || cond.Status != w.status || cond.Reason != w.reason || !strings.Contains(cond.Message, w.msg) {
			t.Errorf("%s: condition %+v, want %s %s containing %q", node, cond, w.status, w.reason, w.msg)
		}
		gauge := value(b.c.m.FenceReady.WithLabelValues(node))
		if (gauge == 1) != (w.status == corev1.ConditionTrue) {
			t.Errorf("%s: liberator_fence_ready = %v", node, gauge)
		}
	}
	if cond := b.condition(t, "cp"); cond != nil {
		t.Errorf("control-plane node (not eligible) got %+v", cond)
	}
	if ok, failed := value(b.c.m.FenceChecks.WithLabelValues("fence-agent", "ok")), value(b.c.m.FenceChecks.WithLabelValues("fence-agent", "failed")); ok != 1 || failed != 1 {
		t.Errorf("checks ok=%v failed=%v, want 1 and 1", ok, failed)
	}
	ev := b.drainEvents()
	if len(ev) != 2 || !strings.HasPrefix(ev[0], "Warning FenceNotReady") || !strings.HasPrefix(ev[1], "Warning FenceNotReady") {
		t.Fatalf("events %q, want two FenceNotReady warnings (w2, w5)", ev)
	}

	// A steady state costs no writes and no events.
	b.syncNodes(t)
	before := b.patches()
	b.c.checkFences(ctx)
	if n := b.patches() - before; n != 0 {
		t.Fatalf("%d status patches in a round where nothing changed", n)
	}
	if ev := b.drainEvents(); len(ev) != 0 {
		t.Fatalf("events in a steady round: %q", ev)
	}

	// The path is repaired: the condition flips, with an event.
	first := b.condition(t, "w2").LastTransitionTime
	b.clk.Step(time.Minute)
	b.power.NodeErr["w2"] = nil
	b.c.checkFences(ctx)
	cond := b.condition(t, "w2")
	if cond.Status != corev1.ConditionTrue || !cond.LastTransitionTime.After(first.Time) {
		t.Fatalf("w2 after repair: %+v", cond)
	}
	if ev := b.drainEvents(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal FenceReady") {
		t.Fatalf("events %q, want one FenceReady", ev)
	}
	// Power state changes the message only: written, no event.
	b.syncNodes(t)
	b.power.NodeOff["w1"] = true
	b.c.checkFences(ctx)
	if cond := b.condition(t, "w1"); !strings.Contains(cond.Message, "power is off") || cond.Status != corev1.ConditionTrue {
		t.Fatalf("w1: %+v", cond)
	}
	if ev := b.drainEvents(); len(ev) != 0 {
		t.Fatalf("events %q on a message change", ev)
	}
}

func TestFenceCheckCancelledPublishesNothing(t *testing.T) {
	b := newCheckBed(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.c.checkFences(ctx)
	if n := b.patches(); n != 0 {
		t.Fatalf("%d patches from a cancelled round", n)
	}
}

func TestFenceCheckSkipsNodeBeingFenced(t *testing.T) {
	b := newCheckBed(t)
	tk := &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-x"}, Spec: v1alpha1.TakeoverSpec{NodeName: "w1"},
		Status: v1alpha1.TakeoverStatus{Phase: v1alpha1.PhaseFencing}}
	if err := b.c.takeovers.GetStore().Add(tk); err != nil {
		t.Fatal(err)
	}
	b.c.checkFences(context.Background())
	if cond := b.condition(t, "w1"); cond != nil {
		t.Fatalf("checked a node whose fence is under way: %+v", cond)
	}
}

func TestSecretGetter(t *testing.T) {
	b := newCheckBed(t)
	_, err := b.kube.CoreV1().Secrets("tkr-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bmc", Namespace: "tkr-system"},
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("pw")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := memoSecrets(b.c.secretGetter())
	for range 3 {
		d, err := get(context.Background(), "bmc")
		if err != nil || string(d["password"]) != "pw" {
			t.Fatalf("get = %v, %v", d, err)
		}
	}
	gets := 0
	for _, a := range b.kube.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "secrets" {
			gets++
		}
	}
	if gets != 1 {
		t.Fatalf("%d Secret reads in one round, want 1", gets)
	}
	if _, err := get(context.Background(), "missing"); !errors.Is(err, fence.ErrSecretNotFound) {
		t.Fatalf("missing Secret: %v", err)
	}
}

func fencedTakeover(phases ...v1alpha1.Phase) *v1alpha1.Takeover {
	tk := &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-20260101-000000"},
		Spec:   v1alpha1.TakeoverSpec{NodeName: "w1", FenceProvider: config.ProviderFenceAgent, Strategy: v1alpha1.StrategyOutOfServiceTaint},
		Status: v1alpha1.TakeoverStatus{RebootRequired: true}}
	for _, p := range phases {
		tk.Status.Timeline = append(tk.Status.Timeline, v1alpha1.PhaseTransition{Phase: p, Time: metav1.NowMicro()})
		tk.Status.Phase = p
	}
	return tk
}

func TestPowerOnAfterTakeover(t *testing.T) {
	tk := fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	b := newCheckBed(t, tk)
	ctx := context.Background()
	live := &v1alpha1.Takeover{}
	if err := b.c.client.Get(ctx, client.ObjectKeyFromObject(tk), live); err != nil {
		t.Fatal(err)
	}
	done, err := b.c.powerOnAfterTakeover(ctx, live)
	if err != nil || !done {
		t.Fatalf("power on = %v, %v", done, err)
	}
	if n := b.power.PowerOnNodes(); len(n) != 1 || n[0] != "w1" {
		t.Fatalf("power ons %v", b.power.PowerOnNodes())
	}
	stored := &v1alpha1.Takeover{}
	if err := b.c.client.Get(ctx, client.ObjectKeyFromObject(tk), stored); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(stored.Status.Conditions, PoweredOnCondition) {
		t.Fatalf("conditions %+v", stored.Status.Conditions)
	}
	// Idempotent.
	if done, err := b.c.powerOnAfterTakeover(ctx, stored); done || err != nil || len(b.power.PowerOnNodes()) != 1 {
		t.Fatalf("second call: %v, %v, %v", done, err, b.power.PowerOnNodes())
	}
}

func TestPowerOnOnlyAfterWorkloadsReady(t *testing.T) {
	b := newCheckBed(t)
	ctx := context.Background()
	for name, tk := range map[string]*v1alpha1.Takeover{
		"not released":     fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFenced),
		"workloads moving": fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased),
	} {
		if done, err := b.c.powerOnAfterTakeover(ctx, tk); done || err != nil {
			t.Fatalf("%s: %v, %v", name, done, err)
		}
	}
	// Not asked for by the class.
	tk := fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	tk.Spec.NodeName = "w4"
	tk.Spec.FenceProvider = config.ProviderNone
	if done, err := b.c.powerOnAfterTakeover(ctx, tk); done || err != nil {
		t.Fatalf("class without powerOnAfterTakeover: %v, %v", done, err)
	}
	if len(b.power.PowerOnNodes()) != 0 {
		t.Fatalf("powered on %v", b.power.PowerOnNodes())
	}
}

func TestPowerOnFailureIsRecorded(t *testing.T) {
	tk := fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	b := newCheckBed(t, tk)
	b.power.NodeErr["w1"] = errors.New("fence_ipmilan on failed (exit 1): connection timed out")
	ctx := context.Background()
	live := &v1alpha1.Takeover{}
	if err := b.c.client.Get(ctx, client.ObjectKeyFromObject(tk), live); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.powerOnAfterTakeover(ctx, live); err == nil || !strings.Contains(err.Error(), "connection timed out") {
		t.Fatalf("error = %v", err)
	}
	c := meta.FindStatusCondition(live.Status.Conditions, PoweredOnCondition)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "PowerOnFailed" {
		t.Fatalf("condition %+v", c)
	}
	// One on the Node, one on the Takeover (events_test.go checks where).
	if ev := b.drainEvents(); len(ev) != 2 || !strings.HasPrefix(ev[0], "Warning PowerOnFailed") || ev[1] != ev[0] {
		t.Fatalf("events %q", ev)
	}
}
