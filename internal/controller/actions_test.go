package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/release"
)

const outOfService = corev1.TaintNodeOutOfService
const fencedTaint = "liberator.dev/fenced"

// detect takes failedNode down and steps it through its unhealthy window:
// nothing opens before the whole window has passed; the step after it opens
// the incident.
func (f *fixture) detect() *v1alpha1.Takeover {
	f.t.Helper()
	window := f.cfg.UnhealthyAfter.Duration
	f.fail(failedNode)
	f.advance(window - time.Second)
	if after := f.mustStep(failedNode); after <= 0 || after > time.Second {
		f.t.Errorf("1 s before the window closes: requeue after %s, want at most 1s", after)
	}
	if tk := f.takeover(failedNode); tk != nil {
		f.t.Fatalf("incident opened before the whole window passed: %s", timeline(tk))
	}
	f.advance(time.Second)
	f.mustStep(failedNode)
	tk := f.mustTakeover(failedNode)
	checkTimeline(f.t, tk, "Detected/LeaseExpired")
	return tk
}

// toReleased takes the stateful workload's node down and through fencing
// and release.
func (f *fixture) toReleased() *v1alpha1.Takeover {
	f.t.Helper()
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	return f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
}

// toWorkloadsReady goes on until mysql-0 is Ready on w2; the node
// lifecycle controller has marked the failed node's Ready Unknown by then.
func (f *fixture) toWorkloadsReady() *v1alpha1.Takeover {
	f.t.Helper()
	f.toReleased()
	f.advance(10 * time.Second)
	f.setNodeReady(failedNode, corev1.ConditionUnknown, "")
	f.putPod(mysqlPod("uid-mysql-0-b", "w2", true))
	return f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
}

// checkNothingReleased fails if any of node's workloads was released.
func (f *fixture) checkNothingReleased(node string) {
	f.t.Helper()
	if d := f.destructive(node); len(d) > 0 {
		f.t.Fatalf("released: %v", d)
	}
}

func TestReconcile(t *testing.T) {
	t.Run("DetectionToRelease", func(t *testing.T) {
		f := newFixture(t, statefulWorkload()...)
		tk := f.detect()
		if n := f.fencer.CallCount(); n != 0 {
			t.Fatalf("fenced at detection: %d calls", n)
		}
		f.checkNothingReleased(failedNode)
		if tk.Status.Heartbeat == "" || tk.Status.BootID != "boot-w1-1" || tk.Spec.NodeUID != "uid-w1" {
			t.Errorf("detection recorded heartbeat %q, bootID %q, node UID %q", tk.Status.Heartbeat, tk.Status.BootID, tk.Spec.NodeUID)
		}
		if !f.hasEvent(corev1.EventTypeWarning, "TakeoverDetected") {
			t.Errorf("no TakeoverDetected event in %v", f.events)
		}

		// Fence: once, and nothing is released by the step that fences.
		tk = f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
		if n := f.fencer.CallCount(); n != 1 {
			t.Fatalf("fencer called %d times, want 1", n)
		}
		call := f.fencer.Calls[0]
		if detected := tk.PhaseTime(v1alpha1.PhaseDetected); call.Node != failedNode || call.Class.Name != "lab" || detected == nil || !call.DetectedAt.Equal(detected.Time) {
			t.Errorf("fence target %+v, want node %s, class lab, detected at %v", call, failedNode, detected)
		}
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced")
		if tk.Status.FenceAttempts != 1 || !tk.Status.RebootRequired {
			t.Errorf("fenceAttempts %d, rebootRequired %v; want 1, true", tk.Status.FenceAttempts, tk.Status.RebootRequired)
		}
		f.checkNothingReleased(failedNode)

		// Release: liberator's NoSchedule taint, mysql-0 force-deleted, its
		// VolumeAttachment deleted, then the out-of-service taint (the
		// node's own taint kept). The DaemonSet pod and the other node's
		// attachment stay.
		tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
		patches := f.taintPatches(failedNode)
		if len(patches) != 2 || !hasTaint(patches[0], fencedTaint) || hasTaint(patches[0], outOfService) ||
			!hasTaint(patches[1], outOfService) || !hasTaint(patches[1], "dedicated") {
			t.Fatalf("taint patches %v, want %s, then %s keeping dedicated", patches, fencedTaint, outOfService)
		}
		if !release.HasTaint(f.node(failedNode)) {
			t.Errorf("node %s has no out-of-service taint: %v", failedNode, f.node(failedNode).Spec.Taints)
		}
		pods := f.deletes("pods")
		if got := keys(pods); strings.Join(got, ",") != "db/mysql-0" {
			t.Fatalf("pods deleted %v, want [db/mysql-0]", got)
		}
		if g := pods[0].grace; g == nil || *g != 0 {
			t.Errorf("mysql-0 deleted with grace %v, want 0", g)
		}
		if got := keys(f.deletes("volumeattachments")); strings.Join(got, ",") != "csi-va-w1" {
			t.Errorf("VolumeAttachments deleted %v, want [csi-va-w1]", got)
		}
		if d := f.deletes("nodes"); len(d) != 0 {
			t.Errorf("node deleted under OutOfServiceTaint: %v", d)
		}
		mp := tk.Status.MovedPods
		if len(mp) != 1 || mp[0].Namespace != "db" || mp[0].Name != "mysql-0" || mp[0].UID != "uid-mysql-0-a" ||
			mp[0].OwnerKind != "StatefulSet" || mp[0].OwnerName != "mysql" || mp[0].ReadyTime != nil {
			t.Errorf("movedPods %+v, want mysql-0 of StatefulSet mysql, not yet Ready", mp)
		}
		if v := tk.Status.ReleasedVolumeAttachments; len(v) != 1 || v[0] != "csi-va-w1" {
			t.Errorf("releasedVolumeAttachments %v", v)
		}
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
		if !f.hasEvent(corev1.EventTypeNormal, "Released") || !f.hasEvent(corev1.EventTypeNormal, "PodReleased") {
			t.Errorf("no Released/PodReleased events in %v", f.events)
		}

		// The StatefulSet recreates mysql-0 on w2: not Ready yet, then Ready.
		f.advance(2 * time.Second)
		f.putPod(mysqlPod("uid-mysql-0-b", "w2", false))
		f.mustStep(failedNode)
		if tk = f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseReleased {
			t.Fatalf("replacement not Ready yet, but phase %s (%s)", tk.Status.Phase, tk.Status.Message)
		}
		f.advance(time.Second)
		f.podReady("db", "mysql-0")
		tk = f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released", "WorkloadsReady/WorkloadsReady")
		m := tk.Status.MovedPods[0]
		if m.ReplacementName != "mysql-0" || m.ReplacementNode != "w2" || m.ReadyTime == nil || !m.ReadyTime.Time.Equal(f.clock.Now()) {
			t.Errorf("moved pod %+v, want replacement mysql-0 on w2, Ready now", m)
		}
		if n := f.fencer.CallCount(); n != 1 || len(f.taintPatches(failedNode)) != 2 || len(f.deletes("pods")) != 1 {
			t.Errorf("after release: %d fence calls, %d taint patches, %d pod deletes; want 1, 2, 1", n, len(f.taintPatches(failedNode)), len(f.deletes("pods")))
		}
	})

	t.Run("ReleaseAbortedByLiveHeartbeat", func(t *testing.T) {
		f := newFixture(t, statefulWorkload()...)
		f.detect()
		f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
		f.checkNothingReleased(failedNode)

		// The kubelet renews its Lease; the watch event has not reached the
		// cache, so the health tracker still sees the node dead and the
		// decision is to release. The release step's live re-read sees it.
		reads := f.liveReads(failedNode)
		f.heartbeatOnServer(failedNode)
		if _, err := f.reconcile(failedNode); err != nil {
			t.Fatal(err)
		}
		if f.liveReads(failedNode) <= reads {
			t.Fatalf("no live re-read of the Lease before release")
		}
		f.checkNothingReleased(failedNode)
		tk := f.mustTakeover(failedNode)
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Recovered/HeartbeatResumed")
		if !strings.Contains(tk.Status.Message, "nothing is released") {
			t.Errorf("message %q does not say nothing was released", tk.Status.Message)
		}
		if len(tk.Status.MovedPods) != 0 || len(tk.Status.ReleasedVolumeAttachments) != 0 {
			t.Errorf("closed incident records released pods %v, attachments %v", tk.Status.MovedPods, tk.Status.ReleasedVolumeAttachments)
		}
		if !f.hasEvent(corev1.EventTypeNormal, "TakeoverAborted") {
			t.Errorf("no TakeoverAborted event in %v", f.events)
		}

		// Once the cache has it, the node is healthy: no new incident.
		f.revive(failedNode)
		f.mustStep(failedNode)
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
		if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseRecovered {
			t.Errorf("a new incident opened for a live node: %s", timeline(tk))
		}
		f.checkNothingReleased(failedNode)
		if n := f.fencer.CallCount(); n != 1 {
			t.Errorf("fencer called %d times, want 1", n)
		}
	})

	t.Run("FenceFailureRetried", func(t *testing.T) {
		f := newFixture(t, statefulWorkload()...)
		f.fencer.Set(func(fk *fence.Fake) {
			fk.Result, fk.Err = fence.Result{}, errors.New("Failed: Unable to obtain correct plug status or plug is not available")
		})
		f.detect()
		tk := f.stepUntil(failedNode, v1alpha1.PhaseFailed, 2)
		failedAt := f.clock.Now()
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Failed/FenceFailed")
		backoff := f.cfg.Retry.InitialBackoff.Duration
		if tk.Status.FenceAttempts != 1 || tk.Status.NextRetryTime == nil || !tk.Status.NextRetryTime.Time.Equal(failedAt.Add(backoff).Truncate(time.Second)) {
			t.Errorf("fenceAttempts %d, nextRetryTime %v; want 1, %v", tk.Status.FenceAttempts, tk.Status.NextRetryTime, failedAt.Add(backoff))
		}
		if !strings.Contains(tk.Status.Message, "nothing is released") {
			t.Errorf("message %q", tk.Status.Message)
		}
		if !f.hasEvent(corev1.EventTypeWarning, "FenceFailed") {
			t.Errorf("no FenceFailed event in %v", f.events)
		}
		f.checkNothingReleased(failedNode)
		if f.fencer.CallCount() != 1 {
			t.Fatalf("fencer called %d times, want 1", f.fencer.CallCount())
		}

		// Within the backoff nothing is tried.
		f.advance(backoff - time.Second)
		if after := f.mustStep(failedNode); after <= 0 || after > time.Second {
			t.Errorf("within backoff: requeue after %s, want at most 1s", after)
		}
		if n := f.fencer.CallCount(); n != 1 {
			t.Fatalf("fence retried within the backoff: %d calls", n)
		}
		f.checkNothingReleased(failedNode)

		// The fence path is repaired; past the backoff the fence is retried.
		f.fencer.Set(func(fk *fence.Fake) { fk.Result, fk.Err = fence.Result{Done: true, Output: "off"}, nil })
		f.advance(time.Second)
		tk = f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
		if n := f.fencer.CallCount(); n != 2 {
			t.Fatalf("fencer called %d times, want 2", n)
		}
		if tk.Status.FenceAttempts != 2 || tk.Status.NextRetryTime != nil {
			t.Errorf("fenceAttempts %d, nextRetryTime %v; want 2, none", tk.Status.FenceAttempts, tk.Status.NextRetryTime)
		}
		// The retry counts on the Fencing entry, which keeps its first time.
		if fencing := tk.Status.Timeline[1]; !strings.Contains(fencing.Message, "attempt 2") || fencing.Count != 2 ||
			fencing.LastTime == nil || !fencing.Time.Before(fencing.LastTime) {
			t.Errorf("retry recorded as %+v", fencing)
		}
		tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Failed/FenceFailed",
			"Fenced/Fenced", "Released/Released")
		if p := f.taintPatches(failedNode); len(p) != 2 || !hasTaint(p[1], outOfService) {
			t.Errorf("taint patches %v", p)
		}
		if got := keys(f.deletes("pods")); strings.Join(got, ",") != "db/mysql-0" {
			t.Errorf("pods deleted %v", got)
		}
	})

	t.Run("LeaderResume", func(t *testing.T) {
		for _, phase := range []v1alpha1.Phase{v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady} {
			t.Run(string(phase), func(t *testing.T) {
				f := resumeFixture(t, phase)
				window := f.cfg.UnhealthyAfter.Duration
				switch phase {
				case v1alpha1.PhaseFencing:
					// The new leader's windows start afresh: once a whole
					// window has passed without a heartbeat, it fences
					// (the previous fence call's outcome is unknown) and
					// releases.
					f.advance(window)
					tk := f.stepUntil(failedNode, v1alpha1.PhaseFenced, 1)
					if n := f.fencer.CallCount(); n != 1 {
						t.Fatalf("fencer called %d times, want 1", n)
					}
					if tk.Status.FenceAttempts != 1 {
						t.Errorf("fenceAttempts %d, want 1 (the attempt under way)", tk.Status.FenceAttempts)
					}
					tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
					checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
				case v1alpha1.PhaseFenced:
					f.advance(window)
					tk := f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
					if n := f.fencer.CallCount(); n != 0 {
						t.Fatalf("a Fenced incident was fenced again: %d calls", n)
					}
					checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
					if got := keys(f.deletes("pods")); strings.Join(got, ",") != "db/mysql-0" {
						t.Errorf("pods deleted %v", got)
					}
				case v1alpha1.PhaseReleased:
					// Watching workloads needs no health window.
					f.mustStep(failedNode)
					if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseReleased {
						t.Fatalf("phase %s, want Released: %s", tk.Status.Phase, timeline(tk))
					}
					f.podReady("db", "mysql-0")
					tk := f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
					if m := tk.Status.MovedPods[0]; m.ReplacementNode != "w2" || m.ReadyTime == nil {
						t.Errorf("moved pod %+v", m)
					}
					f.checkNothingReleased(failedNode)
				case v1alpha1.PhaseWorkloadsReady:
					f.mustStep(failedNode)
					f.advance(window)
					f.mustStep(failedNode)
					tk := f.mustTakeover(failedNode)
					if tk.Status.Phase != v1alpha1.PhaseWorkloadsReady {
						t.Fatalf("phase %s, want WorkloadsReady while the node is down: %s", tk.Status.Phase, timeline(tk))
					}
					f.checkNothingReleased(failedNode)
					// The node comes back rebooted: the new leader closes
					// the incident and removes the taint.
					f.revive(failedNode)
					f.setNodeReady(failedNode, corev1.ConditionTrue, "boot-w1-2")
					f.advance(f.cfg.HealthyDelay.Duration)
					f.stepUntil(failedNode, v1alpha1.PhaseRecovered, 1)
					if p := f.taintPatches(failedNode); len(p) != 1 || hasTaint(p[0], outOfService) {
						t.Errorf("taint patches %v, want one removing %s", p, outOfService)
					}
				}
				if phase != v1alpha1.PhaseFencing {
					if n := f.fencer.CallCount(); n != 0 {
						t.Errorf("fencer called %d times after Fenced", n)
					}
				}
			})
		}
	})

	// A new leader's health windows start afresh: it has not seen the
	// failed node's heartbeat stop. Handed an incident that is already
	// fencing or fenced, it must neither close it as if the heartbeat had
	// resumed nor fence a Fenced one again; it may wait a window before it
	// releases (design: "it may take one window longer to act, never
	// shorter").
	t.Run("LeaderResumeWithinFreshWindow", func(t *testing.T) {
		for _, phase := range []v1alpha1.Phase{v1alpha1.PhaseFencing, v1alpha1.PhaseFenced} {
			t.Run(string(phase), func(t *testing.T) {
				f := resumeFixture(t, phase)
				for range 3 {
					f.mustStep(failedNode)
					f.advance(10 * time.Second)
				}
				if tk := f.mustTakeover(failedNode); tk.Status.Phase == v1alpha1.PhaseRecovered {
					t.Fatalf("the new leader closed the incident within its first window: %s: %s", timeline(tk), tk.Status.Message)
				}
				f.advance(f.cfg.UnhealthyAfter.Duration)
				tk := f.stepUntil(failedNode, v1alpha1.PhaseReleased, 3)
				wantFences := 0
				if phase == v1alpha1.PhaseFencing {
					wantFences = 1
				}
				if n := f.fencer.CallCount(); n != wantFences {
					t.Errorf("fencer called %d times, want %d", n, wantFences)
				}
				checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
			})
		}
	})

	t.Run("Recovery", func(t *testing.T) {
		healthyDelay := func(f *fixture) time.Duration { return f.cfg.HealthyDelay.Duration }

		t.Run("SameBootID", func(t *testing.T) {
			f := newFixture(t, statefulWorkload()...)
			f.toWorkloadsReady()
			// The node answers again without having rebooted (a network
			// partition healed): its old containers may still run.
			f.advance(time.Minute)
			f.revive(failedNode)
			f.setNodeReady(failedNode, corev1.ConditionTrue, "")
			f.mustStep(failedNode)
			f.advance(healthyDelay(f) + 20*time.Second)
			f.mustStep(failedNode)
			tk := f.mustTakeover(failedNode)
			if tk.Status.Phase != v1alpha1.PhaseWorkloadsReady {
				t.Fatalf("phase %s (%s), want WorkloadsReady (awaiting reboot)", tk.Status.Phase, tk.Status.Reason)
			}
			if r := tk.Status.Reason; r != "AwaitingReboot" {
				t.Errorf("reason %s, want AwaitingReboot recorded", r)
			}
			if p := f.taintPatches(failedNode); len(p) != 2 {
				t.Fatalf("taint changed on a node that has not rebooted: %v", p)
			}
			if !release.HasTaint(f.node(failedNode)) {
				t.Fatalf("out-of-service taint gone from a node that has not rebooted")
			}

			// It reboots: not Ready while the kubelet starts, then Ready
			// with a new boot ID; the taint goes after healthyDelay.
			f.setNodeReady(failedNode, corev1.ConditionFalse, "boot-w1-2")
			f.mustStep(failedNode)
			f.advance(10 * time.Second)
			f.setNodeReady(failedNode, corev1.ConditionTrue, "")
			f.mustStep(failedNode)
			f.advance(healthyDelay(f) - time.Second)
			f.mustStep(failedNode)
			if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseWorkloadsReady || len(f.taintPatches(failedNode)) != 2 {
				t.Fatalf("recovered before healthyDelay: %s", timeline(tk))
			}
			f.advance(time.Second)
			tk = f.stepUntil(failedNode, v1alpha1.PhaseRecovered, 1)
			checkUntainted(t, f, tk)
		})

		t.Run("NewBootID", func(t *testing.T) {
			f := newFixture(t, statefulWorkload()...)
			f.toWorkloadsReady()
			f.advance(time.Minute)
			f.revive(failedNode)
			f.setNodeReady(failedNode, corev1.ConditionTrue, "boot-w1-2")
			f.mustStep(failedNode)
			f.advance(healthyDelay(f) - 10*time.Second)
			if after := f.mustStep(failedNode); after <= 0 || after > 10*time.Second {
				t.Errorf("awaiting healthyDelay: requeue after %s, want at most 10s", after)
			}
			if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseWorkloadsReady || len(f.taintPatches(failedNode)) != 2 {
				t.Fatalf("recovered before healthyDelay: %s", timeline(tk))
			}
			f.advance(10 * time.Second)
			tk := f.stepUntil(failedNode, v1alpha1.PhaseRecovered, 1)
			checkUntainted(t, f, tk)
		})
	})
}

// checkUntainted checks a recovered incident: liberator's taint removed
// (the node's own kept), the timeline closed as NodeRecovered.
func checkUntainted(t *testing.T, f *fixture, tk *v1alpha1.Takeover) {
	t.Helper()
	// What the incident waited for (the node's return, its reboot) is
	// recorded on the way; the steps are these.
	var steps []string
	for _, e := range timeline(tk) {
		if !strings.HasPrefix(e, "WorkloadsReady/Awaiting") {
			steps = append(steps, e)
		}
	}
	if want := "Detected/LeaseExpired Fencing/FenceStarted Fenced/Fenced Released/Released WorkloadsReady/WorkloadsReady Recovered/NodeRecovered"; strings.Join(steps, " ") != want {
		t.Fatalf("timeline\n got: %v\nwant: %v", steps, want)
	}
	p := f.taintPatches(failedNode)
	if len(p) != 3 || hasTaint(p[2], outOfService) || hasTaint(p[2], fencedTaint) || !hasTaint(p[2], "dedicated") {
		t.Errorf("taint patches %v, want the third removing liberator's taints only", p)
	}
	if n := f.node(failedNode); release.HasLiberatorTaint(n) || len(n.Spec.Taints) != 1 {
		t.Errorf("taints after recovery %v", n.Spec.Taints)
	}
	if !f.hasEvent(corev1.EventTypeNormal, "Recovered") {
		t.Errorf("no Recovered event in %v", f.events)
	}
	if n := f.fencer.CallCount(); n != 1 {
		t.Errorf("fencer called %d times, want 1", n)
	}
}

// resumeFixture is the cluster as a previous leader left it with failedNode's
// incident in phase, handed to a freshly built controller: its caches are
// synced now, its health tracker has seen nothing before now.
func resumeFixture(t *testing.T, phase v1alpha1.Phase) *fixture {
	t.Helper()
	released := phase == v1alpha1.PhaseReleased || phase == v1alpha1.PhaseWorkloadsReady
	objs := statefulWorkload()
	if released {
		// mysql-0 was force-deleted and recreated on w2, csi-va-w1 deleted.
		objs = []runtime.Object{
			mysqlPod("uid-mysql-0-b", "w2", phase == v1alpha1.PhaseWorkloadsReady),
			objs[1], objs[3],
		}
	}
	f := newFixture(t, objs...)
	f.fail(failedNode)
	f.setNodeReady(failedNode, corev1.ConditionUnknown, "")
	node := f.node(failedNode)
	if released {
		node.Spec.Taints = append(node.Spec.Taints, release.OutOfServiceTaint)
		f.update(nodesGVR, node, "")
	}
	lease, err := f.tracker.Get(leasesGVR, release.NodeLeaseNamespace, failedNode)
	if err != nil {
		t.Fatal(err)
	}

	at := func(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(fixtureStart.Add(d)) }
	detected := fixtureStart.Add(-20 * time.Second)
	tk := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: failedNode + detected.Format("-20060102-150405"), CreationTimestamp: metav1.NewTime(detected)},
		Spec: v1alpha1.TakeoverSpec{NodeName: failedNode, NodeUID: "uid-w1", Strategy: v1alpha1.StrategyOutOfServiceTaint,
			FenceProvider: "wait"},
		Status: v1alpha1.TakeoverStatus{
			Heartbeat: release.Heartbeat(node, lease.(*coordinationv1.Lease)), BootID: "boot-w1-1", FenceAttempts: 1,
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: at(-20 * time.Second), Reason: "LeaseExpired"},
				{Phase: v1alpha1.PhaseFencing, Time: at(-20 * time.Second), Reason: "FenceStarted", Message: "fencing with provider wait (class lab), attempt 1"},
			},
		},
	}
	add := func(p v1alpha1.Phase, reason string, d time.Duration) {
		tk.Status.Timeline = append(tk.Status.Timeline, v1alpha1.PhaseTransition{Phase: p, Time: at(d), Reason: reason})
	}
	if phase != v1alpha1.PhaseFencing {
		add(v1alpha1.PhaseFenced, "Fenced", -15*time.Second)
		tk.Status.RebootRequired = true
	}
	if released {
		add(v1alpha1.PhaseReleased, "Released", -15*time.Second)
		tk.Status.MovedPods = []v1alpha1.MovedPod{{Namespace: "db", Name: "mysql-0", UID: "uid-mysql-0-a",
			OwnerKind: "StatefulSet", OwnerName: "mysql", OwnerUID: "uid-sts-mysql", OwnerAPIVersion: "apps/v1"}}
		tk.Status.ReleasedVolumeAttachments = []string{"csi-va-w1"}
	}
	if phase == v1alpha1.PhaseWorkloadsReady {
		add(v1alpha1.PhaseWorkloadsReady, "WorkloadsReady", -10*time.Second)
		ready := at(-10 * time.Second)
		m := &tk.Status.MovedPods[0]
		m.ReplacementName, m.ReplacementNode, m.ReadyTime = "mysql-0", "w2", &ready
	}
	last := tk.Status.Timeline[len(tk.Status.Timeline)-1]
	tk.Status.Phase, tk.Status.Reason = last.Phase, last.Reason
	f.putTakeover(tk)

	f.newLeader()
	return f
}
