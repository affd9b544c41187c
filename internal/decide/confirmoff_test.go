package decide

import (
	"strings"
	"testing"
	"time"
)

func noneNode(stale time.Duration) Node {
	n := dead(stale)
	n.FenceProvider = "none"
	return n
}

// A node whose class has no automatic fence (provider none) waits for an
// operator's confirmation; releaseUnproven keeps the old release without
// proof; a confirmation is taken like a fence, after the same checks.
func TestConfirmOff(t *testing.T) {
	unproven := noneNode(time.Minute)
	unproven.ReleaseUnproven = true
	unfenceable := dead(time.Minute)
	unfenceable.FenceProvider = ""
	renewed := noneNode(time.Second)
	renewed.HeartbeatChanged = true
	reregistered := noneNode(time.Minute)
	reregistered.UID = "uid-2"
	freshLeader := noneNode(5 * time.Second) // no heartbeat seen since detection, but this controller's window has not run
	gone := Node{Name: "worker-1", FenceProvider: "none"}
	goneRenewing := Node{Name: "worker-1", FenceProvider: "none", HasLease: true, LeaseStaleFor: time.Second}
	storm := cluster()
	storm.Unhealthy = 3
	confirmed := func(ph Phase) *Incident {
		return &Incident{Phase: ph, NodeUID: "uid-1", ConfirmedOffBy: "alice"}
	}
	cases := []struct {
		name    string
		node    Node
		inc     *Incident
		cluster Cluster
		dry     bool
		want    Action
		reason  string
	}{
		{name: "none class: waits for confirm-off, nothing fenced", node: noneNode(time.Minute), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Pause, reason: ReasonAwaitingConfirmOff},
		{name: "none class, releaseUnproven: fenced without proof as before", node: unproven, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Fence},
		{name: "none class, confirmed: confirm off", node: noneNode(time.Minute), inc: confirmed(PhasePaused), want: ConfirmOff, reason: ReasonConfirmedOff},
		{name: "unfenceable, confirmed: confirm off", node: unfenceable, inc: confirmed(PhasePaused), want: ConfirmOff, reason: ReasonConfirmedOff},
		{name: "power fence failing, confirmed during backoff: confirm off", node: dead(time.Minute), inc: &Incident{Phase: PhaseFailed, NodeUID: "uid-1", FenceAttempts: 1, NextRetry: t0.Add(time.Minute), ConfirmedOffBy: "alice"}, want: ConfirmOff},
		{name: "power fence retries exhausted, confirmed: confirm off", node: dead(time.Minute), inc: &Incident{Phase: PhaseFailed, NodeUID: "uid-1", FenceAttempts: 3, ConfirmedOffBy: "alice"}, want: ConfirmOff},
		{name: "confirmed, heartbeat resumed: abort, nothing released", node: renewed, inc: confirmed(PhasePaused), want: Abort, reason: ReasonHeartbeatResumed},
		{name: "confirmed, node re-registered: abort", node: reregistered, inc: confirmed(PhasePaused), want: Abort, reason: ReasonHeartbeatResumed},
		{name: "confirmed, this controller's window not run: wait", node: freshLeader, inc: confirmed(PhasePaused), want: None, reason: ReasonWithinGrace},
		{name: "confirmed, storm guard: held", node: noneNode(time.Minute), inc: confirmed(PhasePaused), cluster: storm, want: Pause, reason: ReasonStormGuard},
		{name: "confirmed, dry run: report only", node: noneNode(time.Minute), inc: confirmed(PhasePaused), dry: true, want: ReportDryRun},
		{name: "confirmed, already fenced: release, no second statement", node: noneNode(time.Minute), inc: &Incident{Phase: PhaseFenced, NodeUID: "uid-1", Fenced: true, ConfirmedOffBy: "alice"}, want: Release},
		{name: "confirmed, already released: track", node: noneNode(time.Minute), inc: &Incident{Phase: PhaseReleased, NodeUID: "uid-1", Fenced: true, Released: true, ConfirmedOffBy: "alice"}, want: TrackWorkloads},
		{name: "Node deleted, confirmed: confirm off by name", node: gone, inc: confirmed(PhasePaused), want: ConfirmOff},
		{name: "Node deleted, none class, unconfirmed: waits", node: gone, inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Pause, reason: ReasonAwaitingConfirmOff},
		{name: "Node deleted, its Lease renews, confirmed: wait", node: goneRenewing, inc: confirmed(PhasePaused), want: None, reason: ReasonWithinGrace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policy()
			p.DryRun = c.dry
			cl := c.cluster
			if cl == (Cluster{}) {
				cl = cluster()
			}
			got := Decide(Input{Now: t0, Node: c.node, Incident: c.inc, Cluster: cl, Policy: p})
			if got.Action != c.want || (c.reason != "" && got.Reason != c.reason) {
				t.Fatalf("got %s/%s (%s), want %s/%s", got.Action, got.Reason, got.Message, c.want, c.reason)
			}
		})
	}
}

func TestAwaitingConfirmOffNamesTheCommand(t *testing.T) {
	d := Decide(Input{Now: t0, Node: noneNode(time.Minute), Incident: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, Cluster: cluster(), Policy: policy()})
	if !strings.Contains(d.Message, "liberator confirm-off worker-1 --reason") {
		t.Fatalf("message does not tell the command: %q", d.Message)
	}
}

// BeforeConfirmOff is the live re-read before a confirmation is taken: a
// heartbeat seen live, or a re-registered Node, refuses it (naming who
// made it); a deleted Node whose Lease renewed starts the incident over.
func TestBeforeConfirmOff(t *testing.T) {
	inc := &Incident{Phase: PhasePaused, NodeUID: "uid-1", ConfirmedOffBy: "alice"}
	cases := []struct {
		name   string
		live   Live
		want   Action
		refuse bool
	}{
		{name: "silent since detection: accepted", live: Live{Exists: true, UID: "uid-1"}, want: ConfirmOff},
		{name: "Node deleted, Lease silent: accepted", live: Live{}, want: ConfirmOff},
		{name: "heartbeat live: refused", live: Live{Exists: true, UID: "uid-1", HeartbeatChanged: true, Detail: "lease renewTime changed"}, want: Abort, refuse: true},
		{name: "re-registered: refused", live: Live{Exists: true, UID: "uid-2"}, want: Abort, refuse: true},
		{name: "Node deleted, Lease renewed: started over", live: Live{HeartbeatChanged: true, Detail: "x"}, want: Redetect, refuse: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := BeforeConfirmOff(inc, c.live)
			if d.Action != c.want {
				t.Fatalf("got %s/%s (%s), want %s", d.Action, d.Reason, d.Message, c.want)
			}
			if c.refuse != strings.HasPrefix(d.Message, "confirm-off by alice refused: the node's heartbeat is live") {
				t.Fatalf("message %q: refusal said = %v, want %v", d.Message, !c.refuse, c.refuse)
			}
		})
	}
}

// No release without a fence or a confirmation: over every phase, guard,
// dry run, class and node state, Release only follows Fenced, and
// ConfirmOff only a confirmation with the guards clear and no heartbeat.
func TestConfirmOffNeverWithoutStatement(t *testing.T) {
	nodes := map[string]Node{"dead": noneNode(time.Minute), "fresh": noneNode(time.Second), "renewed": func() Node { n := noneNode(time.Second); n.HeartbeatChanged = true; return n }(),
		"reregistered": func() Node { n := noneNode(time.Minute); n.UID = "uid-2"; return n }(), "gone": {Name: "x", FenceProvider: "none"}}
	for _, ph := range []Phase{PhaseDetected, PhaseFencing, PhaseFailed, PhasePaused} {
		for _, by := range []string{"", "alice"} {
			for _, dry := range []bool{false, true} {
				for nname, n := range nodes {
					for _, cl := range []Cluster{cluster(), {Eligible: 10, Unhealthy: 9, APIHealthy: true}, {Eligible: 10, Unhealthy: 1}, {Eligible: 10, Unhealthy: 1, APIHealthy: true, Blind: true}} {
						p := policy()
						p.DryRun = dry
						d := Decide(Input{Now: t0, Node: n, Incident: &Incident{Phase: ph, NodeUID: "uid-1", ConfirmedOffBy: by}, Cluster: cl, Policy: p})
						switch d.Action {
						case Release, Fence:
							t.Errorf("%s for an unfenced none-class incident: phase=%s by=%q dry=%v node=%s cluster=%+v", d.Action, ph, by, dry, nname, cl)
						case ConfirmOff:
							if by == "" || dry || nname == "renewed" || nname == "reregistered" || nname == "fresh" || cl.Unhealthy > 2 || !cl.APIHealthy || cl.Blind {
								t.Errorf("ConfirmOff for phase=%s by=%q dry=%v node=%s cluster=%+v", ph, by, dry, nname, cl)
							}
						}
					}
				}
			}
		}
	}
}
