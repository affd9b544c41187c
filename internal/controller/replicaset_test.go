package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// A Deployment's ReplicaSet runs 3 pods, one on the failed node and two
// Ready on other nodes all along. The released pod's replacement is the
// pod the ReplicaSet creates for it, never one of the siblings that were
// already running: until that new pod is Ready elsewhere, the workloads are
// not back.
func TestReconcileReplicaSet(t *testing.T) {
	t.Run("ReplacementIsANewPodNotASibling", func(t *testing.T) {
		const ns = "shop"
		f := newFixture(t,
			newPod(ns, "web-6f9c7d-a1", "uid-web-a1", failedNode, webRS, true, -time.Hour),
			newPod(ns, "web-6f9c7d-b2", "uid-web-b2", "w2", webRS, true, -50*time.Minute),
			newPod(ns, "web-6f9c7d-c3", "uid-web-c3", "w3", webRS, true, -40*time.Minute),
		)
		tk := f.toReleased()
		if got := keys(f.deletes("pods")); strings.Join(got, ",") != ns+"/web-6f9c7d-a1" {
			t.Fatalf("pods deleted %v, want only the failed node's", got)
		}
		if mp := tk.Status.MovedPods; len(mp) != 1 || mp[0].Name != "web-6f9c7d-a1" || mp[0].OwnerKind != "ReplicaSet" || mp[0].OwnerUID != string(webRS.UID) {
			t.Fatalf("movedPods %+v", mp)
		}

		// The ReplicaSet controller has not created the replacement yet;
		// the siblings on w2 and w3 are Ready, as they were before.
		f.advance(time.Second)
		f.mustStep(failedNode)
		if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseReleased {
			m := tk.Status.MovedPods[0]
			t.Fatalf("phase %s before any new pod exists: replacement recorded as %s on %s (a sibling that was Ready before the release)",
				tk.Status.Phase, m.ReplacementName, m.ReplacementNode)
		}

		// The new pod is scheduled on w4, not Ready yet.
		f.advance(time.Second)
		f.putPod(newPod(ns, "web-6f9c7d-d4", "uid-web-d4", "w4", webRS, false, f.clock.Now().Sub(fixtureStart)))
		f.mustStep(failedNode)
		if tk := f.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseReleased {
			t.Fatalf("phase %s while the new pod is not Ready", tk.Status.Phase)
		}

		// It becomes Ready: that is the replacement.
		f.advance(3 * time.Second)
		f.podReady(ns, "web-6f9c7d-d4")
		tk = f.stepUntil(failedNode, v1alpha1.PhaseWorkloadsReady, 1)
		if m := tk.Status.MovedPods[0]; m.ReplacementName != "web-6f9c7d-d4" || m.ReplacementNode != "w4" || m.ReadyTime == nil {
			t.Errorf("moved pod %+v, want replacement web-6f9c7d-d4 on w4", m)
		}
		checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released", "WorkloadsReady/WorkloadsReady")
	})
}
