package decide

import (
	"strings"
	"testing"
	"time"
)

// pausedNote is what the controller passes decide while liberator is paused.
const pausedNote = "by alice since 2026-12-02T15:00:00Z: upgrade"

// TestPauseHoldsOnlyOpenAndFence drives every combination of the model's
// abstract inputs (conformance_test.go) through the code twice, without and
// with the cluster paused (liberator pause). The pause changes exactly two
// decisions: an Open becomes None (no Takeover is opened) and a Fence,
// first or again (the wait provider counting in Fencing), becomes Pause
// before any live read or provider call; both with reason ClusterPaused. Every other decision is the same: an
// incident whose node was proven off goes on to release, one whose
// heartbeat came back aborts, the guards hold what they held.
func TestPauseHoldsOnlyOpenAndFence(t *testing.T) {
	held, same := 0, 0
	for _, ph := range []phase{pNone, pDetected, pFencing, pFenced, pReleasing, pReleased, pDone} {
		for _, cls := range []class{classPower, classWait, classNone} {
			if ph == pFencing && cls != classWait {
				continue
			}
			for bits := range 1 << 10 {
				b := func(i int) bool { return bits&(1<<i) != 0 }
				s := abstract{phase: ph, cls: cls, exists: b(0), window: b(1), cache: b(2), live: b(3), storm: b(4),
					blind: b(5), safe: b(6), repl: b(7), newboot: b(8), api: b(9)}
				for _, inc := range variants(s) {
					name := "none"
					if inc != nil {
						name = string(inc.Phase)
					}
					in, _ := concrete(s, copyOrNil(inc))
					free := codeStep(s, copyOrNil(inc))
					got := pausedStep(s, copyOrNil(inc))
					switch Decide(in).Action {
					case Open:
						held++
						if got.Action != None || got.Reason != ReasonClusterPaused {
							t.Errorf("%v (%s): unpaused Open; paused %s/%s, want None/%s", s, name, got.Action, got.Reason, ReasonClusterPaused)
						}
					case Fence:
						held++
						if got.Action != Pause || got.Reason != ReasonClusterPaused {
							t.Errorf("%v (%s): unpaused %s/%s; paused %s/%s, want Pause/%s", s, name, free.Action, free.Reason, got.Action, got.Reason, ReasonClusterPaused)
						}
						if !strings.Contains(got.Message, pausedNote) || !strings.Contains(got.Message, "liberator resume") {
							t.Errorf("%v (%s): paused message %q does not say who paused, since when, why, and how to end it", s, name, got.Message)
						}
					default:
						same++
						if got != free {
							t.Errorf("%v (%s): the pause changed %+v into %+v; it may only hold Open and Fence", s, name, free, got)
						}
					}
				}
			}
		}
	}
	if held == 0 || same == 0 {
		t.Fatalf("held %d, unchanged %d: the enumeration reaches no Open/Fence or nothing else", held, same)
	}
	t.Logf("%d decisions held by the pause, %d unchanged", held, same)
}

// pausedStep is codeStep with the cluster paused.
func pausedStep(s abstract, inc *Incident) Decision {
	in, _ := concrete(s, copyOrNil(inc))
	if d := Decide(pausedInput(in)); d != Decide(in) {
		return d
	}
	// The same decision: what the controller does next (a live read, the
	// provider) is the unpaused step's.
	return codeStep(s, inc)
}

func pausedInput(in Input) Input {
	in.Cluster.Paused, in.Cluster.PauseNote = true, pausedNote
	return in
}

func copyOrNil(inc *Incident) *Incident {
	if inc == nil {
		return nil
	}
	return copyIncident(inc)
}

// TestPauseHeldIncident is the case an operator meets: an incident in
// Detected when the pause begins is held (Paused, ClusterPaused) and not
// fenced; a Fenced one goes on to release; on resume the held one is
// fenced.
func TestPauseHeldIncident(t *testing.T) {
	node := Node{Name: "worker-1", Exists: true, UID: "uid-1", Eligible: true, HasLease: true, LeaseStaleFor: time.Minute, FenceProvider: "redfish"}
	cl := Cluster{Eligible: 10, Unhealthy: 1, APIHealthy: true}
	detected := &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}
	fenced := &Incident{Phase: PhaseFenced, NodeUID: "uid-1", Fenced: true}
	in := func(inc *Incident) Input {
		return Input{Now: t0, Node: node, Incident: inc, Cluster: cl, Policy: confPolicy()}
	}
	if d := Decide(pausedInput(in(detected))); d.Action != Pause || d.Reason != ReasonClusterPaused {
		t.Errorf("Detected while paused: %s/%s (%s), want Pause/%s", d.Action, d.Reason, d.Message, ReasonClusterPaused)
	}
	paused := &Incident{Phase: PhasePaused, NodeUID: "uid-1"}
	if d := Decide(pausedInput(in(paused))); d.Action != Pause || d.Reason != ReasonClusterPaused {
		t.Errorf("held incident, still paused: %s/%s, want Pause/%s", d.Action, d.Reason, ReasonClusterPaused)
	}
	if d := Decide(in(paused)); d.Action != Fence {
		t.Errorf("held incident after resume: %s/%s, want Fence", d.Action, d.Reason)
	}
	if d := Decide(pausedInput(in(fenced))); d.Action != Release {
		t.Errorf("Fenced while paused: %s/%s, want Release (the node is proven off)", d.Action, d.Reason)
	}
	if d := Decide(pausedInput(Input{Now: t0, Node: node, Cluster: cl, Policy: confPolicy()})); d.Action != None || d.Reason != ReasonClusterPaused {
		t.Errorf("unhealthy node, no incident, paused: %s/%s, want None/%s", d.Action, d.Reason, ReasonClusterPaused)
	}
}
