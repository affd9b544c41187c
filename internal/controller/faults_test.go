package controller

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/release"
)

// stepAll reconciles every fixture node once, after the tick's scan.
func (f *fixture) stepAll() { f.t.Helper(); f.stepOnly(fixtureNodes...) }

// stepOnly reconciles the given nodes once, after the tick's scan.
func (f *fixture) stepOnly(nodes ...string) {
	f.t.Helper()
	f.sync()
	f.c.scan()
	for _, n := range nodes {
		if _, err := f.reconcile(n); err != nil {
			f.t.Fatalf("reconcile %s: %v", n, err)
		}
	}
}

// noneFenced fails the test if any node was fenced or released.
func (f *fixture) noneFenced() {
	f.t.Helper()
	if len(f.fencer.Calls) > 0 {
		f.t.Fatalf("fenced, and it must not have been: %+v", f.fencer.Calls)
	}
	for _, n := range fixtureNodes {
		if d := f.destructive(n); len(d) > 0 {
			f.t.Fatalf("healthy node %s released: %v", n, d)
		}
	}
}

// An API server (or etcd) outage longer than the window: no kubelet can
// renew, so every Lease looks stale. When the API returns, the kubelets
// renew one by one; the last to renew is as healthy as the others and must
// not be fenced once the storm count drops under maxUnhealthy.
func TestOutageStaleTailNotFenced(t *testing.T) {
	f := newFixture(t)
	for _, n := range fixtureNodes {
		f.fail(n)
	}
	for range 6 { // 60 s without a single renewal
		f.advance(10 * time.Second)
		f.stepAll()
	}
	f.noneFenced()
	// The API is back: w2, w3 and w4 renew within a few seconds; w1's
	// kubelet renews last, 9 s later.
	for i, n := range []string{"w2", "w3", "w4"} {
		f.clock.Step(time.Second * time.Duration(1+i))
		f.revive(n)
		f.stepAll()
	}
	for range 6 {
		f.clock.Step(time.Second)
		for _, n := range []string{"w2", "w3", "w4"} {
			f.renewLease(n)
		}
		f.stepAll()
	}
	f.revive("w1")
	for range 8 {
		f.advance(10 * time.Second)
		f.stepAll()
	}
	f.noneFenced()
	if tk := f.takeover("w1"); tk != nil && !tk.Status.Phase.Closed() {
		t.Fatalf("w1's incident still open: %s", timeline(tk))
	}
}

// A partition cuts off two of the four workers whose last renewals were 8 s
// apart: their windows close 8 s apart. maxUnhealthy (40 %, one node) must
// hold both: the first must not be fenced before the second is counted.
func TestStormGuardCountsNodesAboutToFail(t *testing.T) {
	f := newFixture(t)
	f.fail("w1")
	f.advance(8 * time.Second)
	f.fail("w2")
	for range 20 { // w1's window closes at 40 s, w2's at 48 s
		f.advance(2 * time.Second)
		f.stepAll()
	}
	f.noneFenced()
	tk := f.mustTakeover("w1")
	if tk.Status.Phase != v1alpha1.PhasePaused || tk.Status.Reason != decide.ReasonStormGuard {
		t.Fatalf("w1's incident: %s/%s, want Paused/StormGuard", tk.Status.Phase, tk.Status.Reason)
	}
}

// A node taken over and never back does not count toward maxUnhealthy
// forever: after its workloads moved, a second node's failure is handled.
func TestReleasedNodeLeavesTheStormCount(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.toWorkloadsReady()
	f.kube.ClearActions() // the harness's release check reads the calls of one failed node at a time
	f.fail("w3")
	for range 6 {
		f.advance(10 * time.Second)
		f.stepOnly("w1", "w3", "w4")
	}
	if tk := f.mustTakeover("w3"); tk.Status.Phase == v1alpha1.PhasePaused && tk.Status.Reason == decide.ReasonStormGuard {
		t.Fatalf("w3 held by the storm guard because w1, already taken over, still counts: %s", timeline(tk))
	}
}

// A node that returns with its boot ID unchanged after a wait fence: its
// watchdog did not fire. The incident records AwaitingReboot and a Warning
// says so.
func TestAwaitingRebootRecorded(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.toWorkloadsReady()
	f.revive(failedNode)
	f.setNodeReady(failedNode, corev1.ConditionTrue, "")
	for range 3 {
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Reason != decide.ReasonAwaitingReboot {
		t.Fatalf("reason %s, want %s: %s", tk.Status.Reason, decide.ReasonAwaitingReboot, timeline(tk))
	}
	if !f.hasEvent(corev1.EventTypeWarning, decide.EventWatchdogNotFired) {
		t.Fatalf("no Warning %s event: %v", decide.EventWatchdogNotFired, f.events)
	}
}

// deleteNode deletes node's object on the API server (its Lease stays, as
// it may for a while).
func (f *fixture) deleteNode(node string) {
	f.t.Helper()
	if err := f.tracker.Delete(nodesGVR, "", node); err != nil {
		f.t.Fatal(err)
	}
}

// A Node deleted by someone else mid-incident: it is fenced by name before
// its pod is released, and its release has no Node step.
func TestDeletedNodeFencedBeforeRelease(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.fail(failedNode)
	f.advance(40 * time.Second)
	f.mustStep(failedNode)
	if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseDetected {
		t.Fatalf("phase %s, want Detected", tk.Status.Phase)
	}
	f.deleteNode(failedNode)
	tk := f.stepUntil(failedNode, v1alpha1.PhaseReleased, 10)
	if f.fencer.CallCount() != 1 {
		t.Fatalf("fencer called %d times, want once, before the release", f.fencer.CallCount())
	}
	if p := f.taintPatches(failedNode); len(p) != 0 {
		t.Fatalf("taint patches on a deleted Node: %v", p)
	}
	if got := keys(f.deletes("pods")); len(got) != 1 || got[0] != "db/mysql-0" {
		t.Fatalf("pods deleted %v, want db/mysql-0", got)
	}
	if tk.Status.Reason != decide.ReasonReleased {
		t.Fatalf("reason %s", tk.Status.Reason)
	}
}

// A Node deleted mid-incident whose Lease renewed (read live) since
// detection: not fenced; the incident starts over and fences only after a
// new silent window.
func TestDeletedNodeWithRenewedLeaseStartsOver(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.fail(failedNode)
	f.advance(40 * time.Second)
	f.mustStep(failedNode)
	f.deleteNode(failedNode)
	f.sync()
	f.heartbeatOnServer(failedNode) // the cache has not seen it yet
	if _, err := f.reconcile(failedNode); err != nil {
		t.Fatal(err)
	}
	tk := f.mustTakeover(failedNode)
	if f.fencer.CallCount() != 0 || tk.Status.Reason != decide.ReasonRedetected || tk.Status.Phase != v1alpha1.PhaseDetected {
		t.Fatalf("fencer calls %d, incident %s/%s; want no fence and Detected/Redetected", f.fencer.CallCount(), tk.Status.Phase, tk.Status.Reason)
	}
	// Silent again for a whole window: fenced by name, then released.
	for range 5 {
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
	}
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 10)
	if f.fencer.CallCount() != 1 {
		t.Fatalf("fencer called %d times, want once after the new window", f.fencer.CallCount())
	}
}

// A release whose pod deletion is denied (an admission policy, say) says
// so on the Takeover and in a Warning, is not closed, and completes once
// the deletion is allowed.
func TestDeniedReleaseIsReportedAndRollsForward(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	deny := true
	f.kube.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if deny {
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "mysql-0", errors.New("denied by ValidatingAdmissionPolicy deny-mysql-delete"))
		}
		return false, nil, nil
	})
	f.fail(failedNode)
	f.advance(40 * time.Second)
	var err error
	for range 6 {
		if _, err = f.step(failedNode); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("the denied deletion was not reported as an error to retry")
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Reason != decide.ReasonReleaseFailed || tk.Status.ReleaseStarted == nil || tk.Status.Phase.Closed() {
		t.Fatalf("incident %s/%s (releaseStarted %v), want open with reason ReleaseFailed", tk.Status.Phase, tk.Status.Reason, tk.Status.ReleaseStarted)
	}
	if !f.hasEvent(corev1.EventTypeWarning, decide.ReasonReleaseFailed) {
		t.Fatalf("no Warning %s event: %v", decide.ReasonReleaseFailed, f.events)
	}
	deny = false
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 5)
}

// maxConcurrent is exact: a second worker deciding on a cache that has not
// yet seen the first incident's fence cannot take a second slot.
func TestMaxConcurrentExact(t *testing.T) {
	f := newFixture(t)
	f.cfg.MaxConcurrent = 1
	f.cfg.MaxUnhealthy = intstr.FromInt32(2)
	f.fail("w1")
	f.fail("w2")
	f.advance(40 * time.Second)
	f.mustStep("w1")
	f.mustStep("w2")
	f.sync()
	// Both reconciled on the same cache: w1's fence is not in it when w2
	// decides.
	for _, n := range []string{"w1", "w2"} {
		if _, err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.fencer.CallCount(); n != 1 {
		t.Fatalf("fencer called %d times with maxConcurrent 1", n)
	}
	if tk := f.mustTakeover("w2"); tk.Status.Reason != decide.ReasonMaxConcurrent {
		t.Fatalf("w2: %s/%s, want Paused/MaxConcurrent", tk.Status.Phase, tk.Status.Reason)
	}
}

// The wait provider's safe time runs on the acting process's own clock from
// its first fence call: a Takeover whose timeline (another replica's wall
// clock) says the safe time passed long ago does not shorten it.
func TestWaitSafeTimeOnOwnClock(t *testing.T) {
	f := resumeFixture(t, v1alpha1.PhaseFencing)
	f.c.fencer = func(config.FenceClass) (fence.Fencer, error) { return fence.Wait{SafeTime: 5 * time.Second}, nil }
	var tk *v1alpha1.Takeover
	for range 40 { // the new leader's own window first
		f.advance(time.Second)
		f.mustStep(failedNode)
		if tk = f.mustTakeover(failedNode); tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
			break
		}
	}
	fenced := tk.PhaseTime(v1alpha1.PhaseFenced)
	if fenced == nil {
		f.advance(10 * time.Second)
		tk = f.stepUntil(failedNode, v1alpha1.PhaseFenced, 3)
		fenced = tk.PhaseTime(v1alpha1.PhaseFenced)
	}
	if since := fenced.Sub(fixtureStart); since < 45*time.Second {
		t.Fatalf("Fenced %s after the new leader started: less than its own window (40 s) plus the 5 s safe time", since)
	}
}

// A crash between creating a Takeover and its first status write leaves no
// status: the fingerprint written with the object lets the next leader go
// on, not close the incident.
func TestTakeoverWithoutStatusResumes(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.fail(failedNode)
	f.advance(40 * time.Second)
	f.mustStep(failedNode)
	tk := f.mustTakeover(failedNode)
	tk.Status = v1alpha1.TakeoverStatus{}
	if err := f.client.Status().Update(f.ctx(), tk); err != nil {
		t.Fatal(err)
	}
	f.newLeader()
	for range 6 {
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
	}
	tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 5)
	if f.fencer.CallCount() != 1 || tk.Spec.Heartbeat == "" {
		t.Fatalf("fencer called %d times, fingerprint %q", f.fencer.CallCount(), tk.Spec.Heartbeat)
	}
}

// A node whose Node object was deleted mid-incident still counts toward
// the storm guard: with another node silent for half the window, it is
// held.
func TestStormCountsADeletedNodeWithAnIncident(t *testing.T) {
	for _, leaseToo := range []bool{false, true} {
		t.Run(map[bool]string{false: "LeaseKept", true: "LeaseCollected"}[leaseToo], func(t *testing.T) {
			stormCountsADeletedNode(t, leaseToo)
		})
	}
}

func stormCountsADeletedNode(t *testing.T, leaseToo bool) {
	f := newFixture(t)
	f.fail(failedNode)
	f.advance(40 * time.Second)
	f.mustStep(failedNode)
	f.deleteNode(failedNode)
	if leaseToo { // the garbage collector deletes a Node's Lease with it
		if err := f.tracker.Delete(leasesGVR, release.NodeLeaseNamespace, failedNode); err != nil {
			t.Fatal(err)
		}
		f.c.health.forgetNode(failedNode)
		f.c.health.forgetLease(failedNode)
	}
	f.fail("w2")
	f.advance(20 * time.Second) // w2 silent for half the window
	f.stepOnly(failedNode)
	if n := f.fencer.CallCount(); n != 0 {
		t.Fatalf("fenced past the storm guard (%d calls)", n)
	}
	if tk := f.mustTakeover(failedNode); tk.Status.Reason != decide.ReasonStormGuard {
		t.Fatalf("%s/%s, want Paused/StormGuard", tk.Status.Phase, tk.Status.Reason)
	}
}
