package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
)

// refRecorder keeps each event with the object reference the broadcaster
// would send it with (reference.GetReference, as record's recorder does),
// and passes it on to a FakeRecorder, whose strings the other tests read.
type refRecorder struct {
	*record.FakeRecorder
	scheme *runtime.Scheme

	mu  sync.Mutex
	got []recordedEvent
}

type recordedEvent struct {
	ref                  corev1.ObjectReference
	typ, reason, message string
}

func (e recordedEvent) String() string {
	return fmt.Sprintf("%s %s on %s %s/%s uid=%q (%s): %s", e.typ, e.reason, e.ref.Kind, e.ref.Namespace, e.ref.Name, e.ref.UID, e.ref.APIVersion, e.message)
}

func newRefRecorder(rec *record.FakeRecorder, scheme *runtime.Scheme) *refRecorder {
	return &refRecorder{FakeRecorder: rec, scheme: scheme}
}

func (r *refRecorder) keep(o runtime.Object, typ, reason, msg string) {
	ref, err := reference.GetReference(r.scheme, o)
	if err != nil {
		panic(fmt.Sprintf("event %s on an object with no reference: %v", reason, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, recordedEvent{ref: *ref, typ: typ, reason: reason, message: msg})
}

func (r *refRecorder) Event(o runtime.Object, typ, reason, msg string) {
	r.keep(o, typ, reason, msg)
	r.FakeRecorder.Event(o, typ, reason, msg)
}

func (r *refRecorder) Eventf(o runtime.Object, typ, reason, format string, args ...any) {
	r.keep(o, typ, reason, fmt.Sprintf(format, args...))
	r.FakeRecorder.Eventf(o, typ, reason, format, args...)
}

func (r *refRecorder) AnnotatedEventf(o runtime.Object, ann map[string]string, typ, reason, format string, args ...any) {
	r.keep(o, typ, reason, fmt.Sprintf(format, args...))
	r.FakeRecorder.AnnotatedEventf(o, ann, typ, reason, format, args...)
}

// on returns the events recorded on objects of that kind and name.
func (r *refRecorder) on(kind, name string) []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recordedEvent
	for _, e := range r.got {
		if e.ref.Kind == kind && e.ref.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func (r *refRecorder) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.got...)
}

func reasons(es []recordedEvent) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.reason)
	}
	return out
}

// withRefRecorder makes f's controller record events through a refRecorder,
// and the API server give each created Takeover a UID as the real one does.
func withRefRecorder(f *fixture) *refRecorder {
	f.t.Helper()
	r := newRefRecorder(f.rec, f.client.Scheme())
	n := 0
	f.client = interceptor.NewClient(f.client, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			if o.GetUID() == "" {
				n++
				o.SetUID(types.UID(fmt.Sprintf("uid-takeover-%d", n)))
			}
			return c.Create(ctx, o, opts...)
		},
	})
	f.recorder = r
	f.newLeader()
	return r
}

// Every step's event is on the Node with the Node's UID (what `kubectl
// describe node` selects by) and on the Takeover with its kind, group
// version and UID (what `kubectl describe takeover` selects by); each moved
// pod's owner gets the release and the replacement's readiness.
func TestEventTargets(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	rec := withRefRecorder(f)
	tk := f.toWorkloadsReady()
	if tk.UID == "" {
		t.Fatal("the Takeover has no UID")
	}

	steps := []string{decide.EventTakeoverDetected, decide.EventFencing, decide.ReasonFenced, decide.ReasonReleased, decide.ReasonWorkloadsReady}
	onNode := rec.on("Node", failedNode)
	if got := strings.Join(reasons(onNode), ","); got != strings.Join(steps, ",") {
		t.Errorf("events on Node %s: %s, want %s", failedNode, got, strings.Join(steps, ","))
	}
	for _, e := range onNode {
		if e.ref.UID != "uid-w1" || e.ref.APIVersion != "v1" || e.ref.Namespace != "" {
			t.Errorf("event on the Node: %s; want uid %q, apiVersion v1, no namespace", e, "uid-w1")
		}
	}

	onTakeover := rec.on("Takeover", tk.Name)
	if got := strings.Join(reasons(onTakeover), ","); got != strings.Join(steps, ",") {
		t.Errorf("events on Takeover %s: %s, want %s", tk.Name, got, strings.Join(steps, ","))
	}
	for i, e := range onTakeover {
		if e.ref.UID != tk.UID || e.ref.APIVersion != v1alpha1.GroupVersion.String() || e.ref.Namespace != "" {
			t.Errorf("event on the Takeover: %s; want uid %q, apiVersion %s", e, tk.UID, v1alpha1.GroupVersion)
		}
		if i < len(onNode) && (e.typ != onNode[i].typ || e.message != onNode[i].message) {
			t.Errorf("the Takeover's event %s differs from the Node's %s", e, onNode[i])
		}
	}

	onOwner := rec.on("StatefulSet", "mysql")
	want := []string{
		fmt.Sprintf("Normal %s: pod mysql-0 released from failed node w1 (Takeover %s)", decide.EventPodReleased, tk.Name),
		fmt.Sprintf("Normal %s: replacement mysql-0 Ready on node w2 (pod mysql-0 moved from failed node w1, Takeover %s)", decide.EventPodReady, tk.Name),
	}
	var got []string
	for _, e := range onOwner {
		got = append(got, fmt.Sprintf("%s %s: %s", e.typ, e.reason, e.message))
		if e.ref.Namespace != "db" || e.ref.UID != "uid-sts-mysql" || e.ref.APIVersion != "apps/v1" {
			t.Errorf("event on the owner: %s; want namespace db, uid uid-sts-mysql, apps/v1", e)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events on StatefulSet db/mysql:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range rec.all() {
		if e.ref.UID == "" {
			t.Errorf("event without a UID: %s", e)
		}
	}
}

// A Node deleted mid-incident: the incident's later events still name the
// UID recorded at detection, so they stay with that Node's history.
func TestEventsOnDeletedNodeKeepItsUID(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	rec := withRefRecorder(f)
	f.fail(failedNode)
	f.advance(40 * time.Second)
	f.mustStep(failedNode)
	f.deleteNode(failedNode)
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 10)
	onNode := rec.on("Node", failedNode)
	if got := reasons(onNode); len(got) < 3 || got[len(got)-1] != decide.ReasonReleased {
		t.Fatalf("events on Node %s: %v, want detection to release", failedNode, got)
	}
	for _, e := range onNode {
		if e.ref.UID != "uid-w1" {
			t.Errorf("event on the deleted Node: %s; want uid %q", e, "uid-w1")
		}
	}
}

// The fence path check's events and the power-on's are on the Node with
// its UID; the power-on's also on the Takeover.
func TestFenceCheckAndPowerOnEventTargets(t *testing.T) {
	tk := fencedTakeover(v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	tk.UID = "uid-takeover-w1"
	tk.Spec.NodeUID = "uid-w1"
	b := newCheckBed(t, tk)
	rec := newRefRecorder(record.NewFakeRecorder(100), b.c.client.Scheme())
	b.c.recorder = rec
	ctx := context.Background()

	// w2's fence path does not answer, then answers; w5 has no class.
	b.power.NodeErr["w2"] = fmt.Errorf("connection timed out")
	b.c.checkFences(ctx)
	b.syncNodes(t)
	b.power.NodeErr["w2"] = nil
	b.c.checkFences(ctx)
	for node, want := range map[string]string{"w2": decide.EventFenceNotReady + "," + decide.EventFenceReady, "w5": decide.EventFenceNotReady} {
		es := rec.on("Node", node)
		if got := strings.Join(reasons(es), ","); got != want {
			t.Errorf("fence check events on %s: %v, want %s", node, es, want)
		}
		for _, e := range es {
			if e.ref.UID != types.UID("uid-"+node) {
				t.Errorf("fence check event: %s; want uid %q", e, "uid-"+node)
			}
		}
	}

	b.power.NodeErr["w1"] = fmt.Errorf("connection timed out")
	live := &v1alpha1.Takeover{}
	if err := b.c.client.Get(ctx, client.ObjectKeyFromObject(tk), live); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.powerOnAfterTakeover(ctx, live); err == nil {
		t.Fatal("power-on did not fail")
	}
	for _, target := range []struct {
		kind, name string
		uid        types.UID
	}{{"Node", "w1", "uid-w1"}, {"Takeover", tk.Name, tk.UID}} {
		es := rec.on(target.kind, target.name)
		if len(es) != 1 || es[0].reason != decide.ReasonPowerOnFailed || es[0].ref.UID != target.uid {
			t.Errorf("events on %s %s: %v; want one %s with uid %q", target.kind, target.name, es, decide.ReasonPowerOnFailed, target.uid)
		}
	}
}
