package controller

import (
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// releaseRecorder notes, on the wall clock, when mysql-0's replacement
// appeared in the controller's cache and when each taint patch was sent.
type releaseRecorder struct {
	mu          sync.Mutex
	replacement time.Time
	patches     []time.Time
	podDeleted  time.Time
}

func (r *releaseRecorder) note(at *time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*at = time.Now()
}

// withReleaseWait rebuilds the fixture's controller with a real
// replacement wait and records the release's calls; recreate plays the
// StatefulSet controller: after a delay it puts mysql-0's replacement
// (unscheduled, a new UID) in the shared cache.
func withReleaseWait(f *fixture, wait time.Duration, recreate bool) *releaseRecorder {
	f.replWait = wait
	f.c = f.newController()
	f.sync()
	r := &releaseRecorder{}
	f.kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "" && a.(k8stesting.PatchAction).GetName() == failedNode {
			r.mu.Lock()
			r.patches = append(r.patches, time.Now())
			r.mu.Unlock()
		}
		return false, nil, nil
	})
	f.kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.DeleteAction).GetName() != "mysql-0" {
			return false, nil, nil
		}
		r.note(&r.podDeleted)
		if recreate {
			go func() {
				time.Sleep(150 * time.Millisecond)
				s, _ := slim(mysqlPod("uid-mysql-0-b", "", false))
				r.note(&r.replacement)
				_ = f.c.pods.GetIndexer().Update(s)
			}()
		}
		return false, nil, nil
	})
	return r
}

func TestOutOfServiceTaintComesAfterTheReplacementExists(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	r := withReleaseWait(f, 5*time.Second, true)
	tk := f.toReleased()
	checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
	patches := f.taintPatches(failedNode)
	if len(patches) != 2 || !hasTaint(patches[0], fencedTaint) || hasTaint(patches[0], outOfService) || !hasTaint(patches[1], outOfService) {
		t.Fatalf("taint patches %v, want %s, then %s", patches, fencedTaint, outOfService)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.podDeleted.IsZero() || r.replacement.IsZero() || len(r.patches) != 2 {
		t.Fatalf("pod deleted at %v, replacement at %v, %d node patches", r.podDeleted, r.replacement, len(r.patches))
	}
	// The NoSchedule taint first, then the pod, then (once the replacement
	// exists) the out-of-service taint: the taint-eviction controller then
	// finds no pod of that name on the node to delete.
	if !r.patches[0].Before(r.podDeleted) || r.patches[1].Before(r.replacement) {
		t.Errorf("order: NoSchedule taint %v, pod deleted %v, replacement %v, out-of-service taint %v",
			r.patches[0], r.podDeleted, r.replacement, r.patches[1])
	}
	if waited := r.patches[1].Sub(r.replacement); waited > time.Second {
		t.Errorf("the out-of-service taint came %v after the replacement appeared", waited)
	}
}

func TestOutOfServiceTaintWaitIsBounded(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	r := withReleaseWait(f, 300*time.Millisecond, false) // nothing recreates mysql-0
	tk := f.toReleased()
	if tk.Status.Phase != v1alpha1.PhaseReleased {
		t.Fatalf("phase %s, want Released", tk.Status.Phase)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.patches) != 2 {
		t.Fatalf("%d node patches, want 2", len(r.patches))
	}
	if waited := r.patches[1].Sub(r.podDeleted); waited < 300*time.Millisecond || waited > 3*time.Second {
		t.Errorf("out-of-service taint %v after the pod deletion, want after the 300ms bound and soon after it", waited)
	}
	if p := f.taintPatches(failedNode); !hasTaint(p[1], outOfService) {
		t.Errorf("taint patches %v", p)
	}
}

// A heartbeat seen after the pods were force-deleted stops the release
// there: no out-of-service taint on a node that answers, and what was
// released is recorded as an interrupted release.
func TestOutOfServiceTaintNotAddedAfterAHeartbeat(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	f.kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.DeleteAction).GetName() == "mysql-0" {
			f.revive(failedNode) // its Lease renews right after the pod is gone
		}
		return false, nil, nil
	})
	tk := f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	if tk.Status.Reason != "ReleaseInterrupted" {
		t.Fatalf("reason %s (%s), want ReleaseInterrupted", tk.Status.Reason, tk.Status.Message)
	}
	patches := f.taintPatches(failedNode)
	if len(patches) != 1 || !hasTaint(patches[0], fencedTaint) || hasTaint(patches[0], outOfService) {
		t.Fatalf("taint patches %v, want %s only", patches, fencedTaint)
	}
	if got := tk.Status.ReleasedVolumeAttachments; len(got) != 1 || got[0] != "csi-va-w1" {
		t.Errorf("released VolumeAttachments recorded %v, want [csi-va-w1]", got)
	}
}
