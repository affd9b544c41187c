package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// The Takeover records the instants the downtime breakdown is made of, on
// the controller's clock: the last heartbeat seen (with Detected), when a
// replacement was first seen bound (forgotten when that replacement is
// deleted before it is Ready), when it was seen Ready; and the breakdown
// itself when WorkloadsReady is entered, kept afterwards.
func TestDowntimeBreakdownRecorded(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	lastBeat := f.clock.Now() // the fixture's Leases were renewed now
	tk := f.detect()
	if hb := tk.Status.LastHeartbeatSeen; hb == nil || !hb.Time.Equal(lastBeat) {
		t.Fatalf("lastHeartbeatSeen %v, want %s (the last renewal seen before the node failed)", hb, lastBeat)
	}
	window := f.cfg.UnhealthyAfter.Duration
	if got := tk.PhaseTime(v1alpha1.PhaseDetected).Sub(tk.Status.LastHeartbeatSeen.Time); got != window {
		t.Errorf("Detected %s after the last heartbeat seen, want the window %s", got, window)
	}
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)

	// The StatefulSet recreates mysql-0 on w2; the taint-eviction
	// controller then deletes it by name: its binding does not count.
	f.advance(time.Second)
	first := mysqlPod("uid-mysql-0-b", "w2", false)
	f.putPod(first)
	f.mustStep(failedNode)
	boundAt := f.clock.Now()
	if m := f.mustTakeover(failedNode).Status.MovedPods[0]; m.ScheduledTime == nil || !m.ScheduledTime.Time.Equal(boundAt) || m.ReadyTime != nil {
		t.Fatalf("moved pod %+v, want scheduled at %s, not Ready", m, boundAt)
	}
	f.advance(time.Second)
	now := metav1.NewTime(f.clock.Now())
	first.DeletionTimestamp = &now
	f.putPod(first)
	f.mustStep(failedNode)
	if m := f.mustTakeover(failedNode).Status.MovedPods[0]; m.ScheduledTime != nil {
		t.Fatalf("scheduled time %s kept after its replacement was deleted", m.ScheduledTime.Time)
	}
	if err := f.tracker.Delete(podsGVR, "db", "mysql-0"); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Second)
	f.putPod(mysqlPod("uid-mysql-0-c", "w3", false))
	f.mustStep(failedNode)
	boundAt = f.clock.Now()
	f.advance(2 * time.Second)
	f.podReady("db", "mysql-0")
	tk = f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
	m := tk.Status.MovedPods[0]
	if m.ScheduledTime == nil || !m.ScheduledTime.Time.Equal(boundAt) || m.ReadyTime == nil || m.ReplacementNode != "w3" {
		t.Fatalf("moved pod %+v, want scheduled at %s and Ready on w3", m, boundAt)
	}
	d := tk.Status.Downtime
	if d == nil {
		t.Fatal("no downtime breakdown at WorkloadsReady")
	}
	want := v1alpha1.ComputeDowntime(tk)
	if d.Summary() != want.Summary() {
		t.Errorf("recorded %s, want %s", d.Summary(), want.Summary())
	}
	if st, _ := d.Get("start"); st != 2*time.Second {
		t.Errorf("start %s, want 2s (bound, then Ready 2 s later)", st)
	}
	if total, _ := d.Get("total"); total != m.ReadyTime.Sub(tk.Status.LastHeartbeatSeen.Time) {
		t.Errorf("total %s, want from the last heartbeat seen to Ready", total)
	}

	// Kept: later steps do not rewrite it.
	f.advance(10 * time.Second)
	f.mustStep(failedNode)
	if got := f.mustTakeover(failedNode).Status.Downtime; got == nil || got.Summary() != d.Summary() {
		t.Errorf("breakdown changed after WorkloadsReady: %v, was %s", got, d.Summary())
	}
}

// Two pods of one ReplicaSet leave the failed node: one new pod bound
// elsewhere schedules one of them, not both.
func TestScheduledOnePerReplacement(t *testing.T) {
	const ns = "shop"
	f := newFixture(t,
		newPod(ns, "web-a1", "uid-web-a1", failedNode, webRS, true, -time.Hour),
		newPod(ns, "web-a2", "uid-web-a2", failedNode, webRS, true, -time.Hour),
	)
	tk := f.toReleased()
	if len(tk.Status.MovedPods) != 2 {
		t.Fatalf("moved pods %+v, want 2", tk.Status.MovedPods)
	}
	f.advance(time.Second)
	f.putPod(newPod(ns, "web-b1", "uid-web-b1", "w2", webRS, false, f.clock.Now().Sub(fixtureStart)))
	f.mustStep(failedNode)
	scheduled := 0
	for _, m := range f.mustTakeover(failedNode).Status.MovedPods {
		if m.ScheduledTime != nil {
			scheduled++
		}
	}
	if scheduled != 1 {
		t.Fatalf("%d moved pods scheduled by one new pod, want 1", scheduled)
	}
	f.advance(time.Second)
	f.putPod(newPod(ns, "web-b2", "uid-web-b2", "w3", webRS, false, f.clock.Now().Sub(fixtureStart)))
	f.podReady(ns, "web-b1")
	f.podReady(ns, "web-b2")
	tk = f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
	for _, m := range tk.Status.MovedPods {
		if m.ScheduledTime == nil || m.ReadyTime == nil {
			t.Fatalf("moved pod %+v, want scheduled and Ready", m)
		}
	}
	if _, ok := tk.Status.Downtime.Get("schedule"); !ok {
		t.Fatalf("breakdown %s has no schedule part", tk.Status.Downtime.Summary())
	}
}
