package decide

import (
	"testing"
	"time"
)

// Decisions under control-plane faults: each case is a defect the fault
// suite found, and fails on the code before its fix.
func TestDecideUnderFaults(t *testing.T) {
	// A new leader's window starts afresh: the node looks only a few
	// seconds stale, but no heartbeat was seen to change since detection.
	freshLeader := dead(3 * time.Second)
	// The leader saw the heartbeat change against the detection fingerprint.
	changed := dead(2 * time.Second)
	changed.HeartbeatChanged = true
	gone := Node{Name: "worker-1", FenceProvider: "ipmi"}
	goneUnfenceable := Node{Name: "worker-1"}
	notReadyLeaseLive := healthy()
	notReadyLeaseLive.Ready, notReadyLeaseLive.NotReadyFor, notReadyLeaseLive.HealthyFor = false, 5*time.Minute, 0
	notReadyNoLease := notReadyLeaseLive
	notReadyNoLease.HasLease, notReadyNoLease.LeaseStaleFor = false, 0
	apiDown := cluster()
	apiDown.APIHealthy = false

	cases := []struct {
		name    string
		node    Node
		inc     *Incident
		cluster *Cluster
		pol     func(*Policy)
		want    Action
		reason  string
	}{
		// Defect 2: a fresh leader must not close a fenced incident.
		{name: "fresh leader, Fenced, no heartbeat seen: release", node: freshLeader, inc: &Incident{Phase: PhaseFenced, Fenced: true, NodeUID: "uid-1"}, want: Release},
		{name: "fresh leader, Fencing, no heartbeat seen: wait for its own window, no abort", node: freshLeader, inc: &Incident{Phase: PhaseFencing, NodeUID: "uid-1"}, want: None, reason: ReasonWithinGrace},
		{name: "fresh leader, Detected, no heartbeat seen: wait for its own window, no abort", node: freshLeader, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: None, reason: ReasonWithinGrace},
		{name: "fresh leader, Detected, its own window passed: fence", node: dead(40 * time.Second), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Fence},
		// Defect 1: a blind view (no renewal of any node seen) opens and fences nothing.
		{name: "blind view: nothing opened", node: dead(time.Minute), cluster: &Cluster{Eligible: 10, Unhealthy: 10, APIHealthy: true, Blind: true}, want: None, reason: ReasonViewBlind},
		{name: "API unreliable: nothing opened", node: dead(time.Minute), cluster: &apiDown, want: None, reason: ReasonAPIUnreliable},
		{name: "blind view: open incident held", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, cluster: &Cluster{Eligible: 10, Unhealthy: 1, APIHealthy: true, Blind: true}, want: Pause, reason: ReasonViewBlind},
		// Defect 5: nodes about to fail count toward the storm guard.
		{name: "one unhealthy and two about to be: storm", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, cluster: &Cluster{Eligible: 10, Unhealthy: 1, Suspect: 2, APIHealthy: true}, want: Pause, reason: ReasonStormGuard},
		{name: "heartbeat seen changed before fence: abort", node: changed, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Abort, reason: ReasonHeartbeatResumed},
		{name: "heartbeat seen changed after fence: abort, nothing released", node: changed, inc: &Incident{Phase: PhaseFenced, Fenced: true, NodeUID: "uid-1"}, want: Abort, reason: ReasonHeartbeatResumed},
		// Defect 3: a Node deleted mid-incident is fenced before anything else.
		{name: "node deleted before fence: fence by name", node: gone, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Fence},
		{name: "node deleted while fencing: fence on", node: gone, inc: &Incident{Phase: PhaseFencing, NodeUID: "uid-1"}, want: Fence},
		{name: "node deleted after fence: release its pods", node: gone, inc: &Incident{Phase: PhaseFenced, Fenced: true, NodeUID: "uid-1"}, want: Release, reason: ReasonNodeGoneBeforeFence},
		{name: "node deleted, no fence class known: held, never released", node: goneUnfenceable, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Pause, reason: ReasonUnfenceable},
		{name: "node deleted, API unreliable: held", node: gone, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, cluster: &apiDown, want: Pause, reason: ReasonAPIUnreliable},
		// Defect 4: a node whose Lease renews is never taken over for NotReady.
		{name: "NotReady with a renewing Lease: reported, not opened", node: notReadyLeaseLive, want: None, reason: ReasonNotReadyLeaseLive},
		{name: "NotReady without a Lease for the window: open", node: notReadyNoLease, want: Open, reason: ReasonNotReady},
		{name: "open incident, Lease renewing but NotReady: abort on the seen heartbeat", node: func() Node { n := notReadyLeaseLive; n.HeartbeatChanged = true; return n }(), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Abort, reason: ReasonHeartbeatResumed},
		// Defect 7: once a destructive step happened, the incident rolls forward.
		{name: "release started, heartbeat seen: roll forward, record what was released", node: changed, inc: &Incident{Phase: PhaseFenced, Fenced: true, ReleaseStarted: true, NodeUID: "uid-1"}, want: Release, reason: ReasonReleaseInterrupted},
		{name: "release started, storm guard on: finish the release", node: dead(time.Minute), inc: &Incident{Phase: PhaseFenced, Fenced: true, ReleaseStarted: true, NodeUID: "uid-1"}, cluster: &Cluster{Eligible: 10, Unhealthy: 9, APIHealthy: true}, want: Release},
		{name: "release started, node opted out meanwhile: finish the release", node: func() Node { n := dead(time.Minute); n.Eligible = false; return n }(), inc: &Incident{Phase: PhaseFenced, Fenced: true, ReleaseStarted: true, NodeUID: "uid-1"}, want: Release},
		// Defect 9: dry run follows the policy in force, not the one at detection.
		{name: "opened in dry run, dry run now off: fence", node: dead(time.Minute), inc: &Incident{Phase: PhasePaused, DryRun: true, Reported: true, NodeUID: "uid-1"}, want: Fence},
		{name: "dry run on: report", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, pol: func(p *Policy) { p.DryRun = true }, want: ReportDryRun},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policy()
			if c.pol != nil {
				c.pol(&p)
			}
			cl := cluster()
			if c.cluster != nil {
				cl = *c.cluster
			}
			got := Decide(Input{Now: t0, Node: c.node, Incident: c.inc, Cluster: cl, Policy: p})
			if got.Action != c.want || (c.reason != "" && got.Reason != c.reason) {
				t.Fatalf("got %s/%s (%s), want %s/%s", got.Action, got.Reason, got.Message, c.want, c.reason)
			}
		})
	}
}

// Before fencing and before releasing, the live re-read decides.
func TestBeforeFenceAndRelease(t *testing.T) {
	inc := &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}
	if d := BeforeFence(inc, Live{Exists: true, UID: "uid-1"}); d.Action != Fence {
		t.Errorf("unchanged: got %s, want Fence", d.Action)
	}
	if d := BeforeFence(inc, Live{Exists: true, UID: "uid-1", HeartbeatChanged: true}); d.Action != Abort || d.Reason != ReasonHeartbeatResumed {
		t.Errorf("heartbeat changed: got %s/%s, want Abort/HeartbeatResumed", d.Action, d.Reason)
	}
	if d := BeforeFence(inc, Live{}); d.Action != Fence {
		t.Errorf("node deleted: got %s, want Fence (the BMC is known by the node's name)", d.Action)
	}
	if d := BeforeFence(inc, Live{Exists: true, UID: "uid-2"}); d.Action != Abort {
		t.Errorf("node re-registered (alive): got %s, want Abort", d.Action)
	}
	fenced := &Incident{Phase: PhaseFenced, Fenced: true, NodeUID: "uid-1"}
	if d := BeforeRelease(fenced, Live{}); d.Action != Release || d.Reason != ReasonNodeGoneBeforeFence {
		t.Errorf("fenced, node deleted: got %s/%s, want Release/NodeDeleted (pods and attachments only)", d.Action, d.Reason)
	}
	started := &Incident{Phase: PhaseFenced, Fenced: true, ReleaseStarted: true, NodeUID: "uid-1"}
	if d := BeforeRelease(started, Live{Exists: true, UID: "uid-1", HeartbeatChanged: true}); d.Action != Release || d.Reason != ReasonReleaseInterrupted {
		t.Errorf("release started, heartbeat: got %s/%s, want Release/ReleaseInterrupted", d.Action, d.Reason)
	}
}

// Rules the model check found (model/states.md): a heartbeat in the cache
// closes an incident only when a live read confirms it; a deleted Node whose
// Lease still renews is not fenced until the Lease stays silent for a
// window; a started release pauses on a view it cannot trust.
func TestDecideModelRules(t *testing.T) {
	inc := &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}
	if d := ConfirmResumed(inc, Live{Exists: true, UID: "uid-1"}); d.Action != None || d.Reason != ReasonCacheLags || d.RequeueAfter <= 0 {
		t.Errorf("cache changed, live unchanged: got %s/%s requeue %s, want None/CacheLags with a requeue", d.Action, d.Reason, d.RequeueAfter)
	}
	if d := ConfirmResumed(inc, Live{Exists: true, UID: "uid-1", HeartbeatChanged: true}); d.Action != Abort || d.Reason != ReasonHeartbeatResumed {
		t.Errorf("live changed: got %s/%s, want Abort/HeartbeatResumed", d.Action, d.Reason)
	}
	if d := ConfirmResumed(inc, Live{Exists: true, UID: "uid-2"}); d.Action != Abort {
		t.Errorf("re-registered: got %s, want Abort", d.Action)
	}
	if d := ConfirmResumed(inc, Live{}); d.Action == Abort {
		t.Errorf("Node gone: got Abort; a deleted Node is fenced, never closed on a heartbeat")
	}

	goneRenewing := Node{Name: "worker-1", FenceProvider: "ipmi", HasLease: true, LeaseStaleFor: 5 * time.Second}
	if d := Decide(Input{Now: t0, Node: goneRenewing, Incident: inc, Cluster: cluster(), Policy: policy()}); d.Action != None || d.RequeueAfter <= 0 {
		t.Errorf("Node deleted, Lease renewing: got %s/%s, want None with a requeue (not fenced while its kubelet is alive)", d.Action, d.Reason)
	}
	goneSilent := goneRenewing
	goneSilent.LeaseStaleFor = 40 * time.Second
	if d := Decide(Input{Now: t0, Node: goneSilent, Incident: inc, Cluster: cluster(), Policy: policy()}); d.Action != Fence {
		t.Errorf("Node deleted, Lease silent for the window: got %s, want Fence", d.Action)
	}

	started := &Incident{Phase: PhaseFenced, Fenced: true, ReleaseStarted: true, NodeUID: "uid-1"}
	for name, cl := range map[string]Cluster{"api down": {Eligible: 10, Unhealthy: 1}, "blind": {Eligible: 10, Unhealthy: 1, APIHealthy: true, Blind: true}} {
		if d := Decide(Input{Now: t0, Node: dead(time.Minute), Incident: started, Cluster: cl, Policy: policy()}); d.Action != Pause {
			t.Errorf("release started, %s: got %s, want Pause", name, d.Action)
		}
	}
}
