package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
)

// withClasses rebuilds the controller with these fence classes (before
// anything fails).
func (f *fixture) withClasses(classes ...config.FenceClass) {
	f.t.Helper()
	f.cfg.Fencing.Classes = classes
	f.newLeader()
}

var manualClass = config.FenceClass{Name: "manual", Provider: config.ProviderNone, Timeout: config.Duration{Duration: time.Second}}

// confirmOff writes an operator's statement on the node's Takeover, as
// liberator confirm-off does, against the heartbeat given ("" for the
// one recorded at detection).
func (f *fixture) confirmOff(by, reason, heartbeat string) *v1alpha1.Takeover {
	f.t.Helper()
	tk := f.mustTakeover(failedNode)
	if heartbeat == "" {
		heartbeat = tk.DetectedHeartbeat()
	}
	tk.Spec.ConfirmedOff = &v1alpha1.ConfirmedOff{By: by, Time: metav1.NewTime(f.clock.Now()), Reason: reason, Heartbeat: heartbeat}
	if err := f.client.Update(f.ctx(), tk); err != nil {
		f.t.Fatal(err)
	}
	return tk
}

// awaitingConfirmOff fails the node, and checks that its incident waits
// for an operator for a good while, fencing and releasing nothing.
func (f *fixture) awaitingConfirmOff(reason string) {
	f.t.Helper()
	f.detect()
	for range 5 {
		f.mustStep(failedNode)
		f.advance(10 * time.Second)
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Phase != v1alpha1.PhasePaused || tk.Status.Reason != reason {
		f.t.Fatalf("phase %s/%s (%s), want Paused/%s", tk.Status.Phase, tk.Status.Reason, tk.Status.Message, reason)
	}
	if !strings.Contains(tk.Status.Message, "liberator confirm-off "+failedNode) {
		f.t.Errorf("message does not tell the command: %q", tk.Status.Message)
	}
	if n := f.fencer.CallCount(); n != 0 {
		f.t.Fatalf("fencer called %d times", n)
	}
	f.checkNothingReleased(failedNode)
}

func TestConfirmOffReleasesANoneClassNode(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.withClasses(manualClass)
	f.awaitingConfirmOff(decide.ReasonAwaitingConfirmOff)

	f.confirmOff("alice", "pulled the plug", "")
	tk := f.stepUntil(failedNode, v1alpha1.PhaseFenced, 1)
	last := tk.Status.Timeline[len(tk.Status.Timeline)-1]
	if last.Reason != decide.ReasonConfirmedOff || !strings.HasPrefix(last.Message, "confirmed off by alice at ") || !strings.HasSuffix(last.Message, ": pulled the plug") {
		t.Fatalf("Fenced entry %s/%s %q, want ConfirmedOff, confirmed off by alice at ...: pulled the plug", last.Phase, last.Reason, last.Message)
	}
	if !tk.Status.RebootRequired {
		t.Errorf("rebootRequired false: a node confirmed off must come back with a new boot")
	}
	if !f.hasEvent(corev1.EventTypeNormal, decide.ReasonConfirmedOff) {
		t.Errorf("no ConfirmedOff event in %v", f.events)
	}
	if n := f.fencer.CallCount(); n != 0 {
		t.Fatalf("fencer called %d times", n)
	}
	tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	if got := keys(f.deletes("pods")); strings.Join(got, ",") != "db/mysql-0" {
		t.Fatalf("pods deleted %v, want [db/mysql-0]", got)
	}
	checkTimeline(t, tk, "Detected/LeaseExpired", "Paused/AwaitingConfirmOff", "Fenced/ConfirmedOff", "Released/Released")
}

func TestConfirmOffReleasesUnfenceableAndFailingNodes(t *testing.T) {
	t.Run("Unfenceable", func(t *testing.T) {
		f := newFixture(t, statefulWorkload()...)
		f.withClasses() // no class matches
		f.awaitingConfirmOff(decide.ReasonUnfenceable)
		f.confirmOff("bob", "switched off at the PDU", "")
		f.stepUntil(failedNode, v1alpha1.PhaseFenced, 1)
		f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	})
	t.Run("PowerFenceFailing", func(t *testing.T) {
		f := newFixture(t, statefulWorkload()...)
		f.fencer.Err, f.fencer.Result = errors.New("BMC unreachable"), fence.Result{}
		f.detect()
		f.stepUntil(failedNode, v1alpha1.PhaseFailed, 3)
		f.confirmOff("bob", "BMC dead, pulled the plug", "")
		calls := f.fencer.CallCount()
		tk := f.stepUntil(failedNode, v1alpha1.PhaseFenced, 1)
		if tk.Status.Reason != decide.ReasonConfirmedOff || f.fencer.CallCount() != calls {
			t.Fatalf("Fenced/%s after %d more fence calls; want ConfirmedOff and none", tk.Status.Reason, f.fencer.CallCount()-calls)
		}
		f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	})
}

// The controller is authoritative: a statement made while the node's
// heartbeat is live is refused (recorded, a Warning event), nothing is
// released, and the incident ends as any whose heartbeat resumed.
func TestConfirmOffRefusedWhileHeartbeatLive(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "seen live only"
		if cached {
			name = "seen in the cache"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, statefulWorkload()...)
			f.withClasses(manualClass)
			f.awaitingConfirmOff(decide.ReasonAwaitingConfirmOff)
			f.confirmOff("mallory", "it is off, trust me", "")
			f.sync() // the controller sees the statement
			if cached {
				f.revive(failedNode)
			} else {
				f.heartbeatOnServer(failedNode)
			}
			f.reconcile(failedNode) // on the caches as they are: the live read is the one to see it
			tk := f.mustTakeover(failedNode)
			if tk.Status.Phase != v1alpha1.PhaseRecovered || tk.Status.Reason != decide.ReasonHeartbeatResumed {
				t.Fatalf("phase %s/%s, want Recovered/HeartbeatResumed: %s", tk.Status.Phase, tk.Status.Reason, timeline(tk))
			}
			if !strings.HasPrefix(tk.Status.Message, "confirm-off by mallory refused: the node's heartbeat is live") {
				t.Errorf("message %q does not record the refusal", tk.Status.Message)
			}
			if !f.hasEvent(corev1.EventTypeWarning, decide.EventConfirmOffRefused) {
				t.Errorf("no Warning ConfirmOffRefused event in %v", f.events)
			}
			if tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
				t.Fatalf("fenced: %s", timeline(tk))
			}
			f.checkNothingReleased(failedNode)
		})
	}
}

// A statement made for the incident as it was before it started over
// (another heartbeat fingerprint) is not taken.
func TestConfirmOffForAnotherIncidentIgnored(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.withClasses(manualClass)
	f.awaitingConfirmOff(decide.ReasonAwaitingConfirmOff)
	f.confirmOff("alice", "pulled the plug", "lease=2026-03-01T11:00:00.000000Z;ready=")
	for range 3 {
		f.mustStep(failedNode)
		f.advance(10 * time.Second)
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Reason != decide.ReasonAwaitingConfirmOff || tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
		t.Fatalf("a statement for another incident was taken: %s", timeline(tk))
	}
	f.checkNothingReleased(failedNode)
}

// A statement on an incident already fenced and released changes nothing.
func TestConfirmOffAfterReleaseIgnored(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.toReleased()
	before := timeline(f.mustTakeover(failedNode))
	f.confirmOff("alice", "late", "")
	f.mustStep(failedNode)
	tk := f.mustTakeover(failedNode)
	for _, e := range tk.Status.Timeline {
		if e.Reason == decide.ReasonConfirmedOff {
			t.Fatalf("confirmed after release: %s (before %v)", timeline(tk), before)
		}
	}
	if n := len(f.deletes("pods")); n != 1 {
		t.Fatalf("%d pod deletions, want the one release", n)
	}
}
