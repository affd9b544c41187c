package decide

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func policy() Policy {
	return Policy{UnhealthyAfter: 40 * time.Second, HealthyDelay: 30 * time.Second, MaxUnhealthy: 2, MaxConcurrent: 1, MaxAttempts: 3}
}

func healthy() Node {
	return Node{Name: "worker-1", Exists: true, UID: "uid-1", Eligible: true, HasLease: true,
		LeaseStaleFor: 3 * time.Second, Ready: true, HealthyFor: time.Hour, BootID: "boot-1", FenceProvider: "wait"}
}

func dead(stale time.Duration) Node {
	n := healthy()
	n.LeaseStaleFor, n.HealthyFor = stale, 0
	return n
}

func cluster() Cluster { return Cluster{Eligible: 10, Unhealthy: 1, APIHealthy: true} }

func TestDecide(t *testing.T) {
	type tc struct {
		name      string
		node      Node
		inc       *Incident
		cluster   Cluster
		pol       func(*Policy)
		want      Action
		reason    string
		requeueGT time.Duration // RequeueAfter must be > this, when set
		requeue   bool          // RequeueAfter must be > 0 (implied by requeueGT)
	}
	notReady := healthy()
	notReady.Ready, notReady.NotReadyFor, notReady.HealthyFor = false, 41*time.Second, 0
	notReady.HasLease, notReady.LeaseStaleFor = false, 0 // NotReady counts only for a node without a Lease
	flapping := dead(39 * time.Second)                   // a renewal 39 s ago reset the window
	controlPlane := dead(time.Minute)
	controlPlane.Eligible, controlPlane.IneligibleReason = false, "control-plane node"
	optedOut := dead(time.Minute)
	optedOut.Eligible, optedOut.IneligibleReason = false, "opted out"
	unfenceable := dead(time.Minute)
	unfenceable.FenceProvider = ""
	back := healthy()
	back.HealthyFor = time.Minute
	backSameBoot := back
	backNew := back
	backNew.BootID = "boot-2"
	backNewEarly := backNew
	backNewEarly.HealthyFor = 10 * time.Second
	renewed := dead(time.Minute)
	renewed.LeaseStaleFor, renewed.HealthyFor, renewed.HeartbeatChanged = time.Second, time.Second, true
	reregistered := backNew
	reregistered.UID = "uid-2"
	gone := Node{Name: "worker-1"}
	storm := cluster()
	storm.Unhealthy = 3
	busy := cluster()
	busy.Active = 1
	apiDown := cluster()
	apiDown.APIHealthy = false

	cases := []tc{
		{name: "healthy node: nothing", node: healthy(), want: None, reason: ReasonWithinGrace, requeueGT: 30 * time.Second},
		{name: "lease stale for the whole window: open", node: dead(40 * time.Second), want: Open, reason: ReasonLeaseExpired},
		{name: "lease stale inside window: requeue when it would close", node: flapping, want: None, reason: ReasonWithinGrace, requeue: true},
		{name: "Ready not True for the window: open", node: notReady, want: Open, reason: ReasonNotReady},
		{name: "control-plane node excluded", node: controlPlane, want: None, reason: ReasonNotEligible},
		{name: "opted-out node excluded", node: optedOut, want: None, reason: ReasonNotEligible},
		{name: "node without object: nothing", node: gone, want: None},

		{name: "detected: fence", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected, NodeUID: "uid-1"}, want: Fence},
		{name: "storm: pause, nothing fenced", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected}, cluster: storm, want: Pause, reason: ReasonStormGuard},
		{name: "storm after fence: release held", node: dead(time.Minute), inc: &Incident{Phase: PhaseFenced, Fenced: true}, cluster: storm, want: Pause, reason: ReasonStormGuard},
		{name: "api unreliable: pause", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected}, cluster: apiDown, want: Pause, reason: ReasonAPIUnreliable},
		{name: "storm lifted: paused incident fences", node: dead(time.Minute), inc: &Incident{Phase: PhasePaused}, want: Fence},
		{name: "concurrency bound: pause", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected}, cluster: busy, want: Pause, reason: ReasonMaxConcurrent},
		{name: "fencing resumed after restart ignores own slot", node: dead(time.Minute), inc: &Incident{Phase: PhaseFencing}, cluster: busy, want: Fence},
		{name: "unfenceable node: never released", node: unfenceable, inc: &Incident{Phase: PhaseDetected}, want: Pause, reason: ReasonUnfenceable},
		{name: "fenced: release", node: dead(time.Minute), inc: &Incident{Phase: PhaseFenced, Fenced: true}, want: Release, reason: ReasonFenced},
		{name: "paused after fence resumes with release, no second fence", node: dead(time.Minute), inc: &Incident{Phase: PhasePaused, Fenced: true}, want: Release},
		{name: "fence failed: no release, wait for backoff", node: dead(time.Minute), inc: &Incident{Phase: PhaseFailed, FenceAttempts: 1, NextRetry: t0.Add(10 * time.Second)}, want: None, reason: ReasonRetryBackoff, requeueGT: 9 * time.Second},
		{name: "fence failed: retry after backoff", node: dead(time.Minute), inc: &Incident{Phase: PhaseFailed, FenceAttempts: 1, NextRetry: t0.Add(-time.Second)}, want: Fence},
		{name: "fence failed too often: stop", node: dead(time.Minute), inc: &Incident{Phase: PhaseFailed, FenceAttempts: 3}, want: None, reason: ReasonRetriesExhausted},
		{name: "node back mid-fence: abort, nothing released", node: renewed, inc: &Incident{Phase: PhaseFencing}, want: Abort, reason: ReasonHeartbeatResumed},
		{name: "node back after fence, before release: abort", node: renewed, inc: &Incident{Phase: PhaseFenced, Fenced: true}, want: Abort, reason: ReasonHeartbeatResumed},
		{name: "opted out mid-incident: abort", node: optedOut, inc: &Incident{Phase: PhaseDetected}, want: Abort, reason: ReasonOptedOut},
		{name: "node deleted by someone before release: fenced first", node: Node{Name: "worker-1", FenceProvider: "wait"}, inc: &Incident{Phase: PhaseDetected}, want: Fence},
		{name: "dry run: report once", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected, DryRun: true}, pol: func(p *Policy) { p.DryRun = true }, want: ReportDryRun},
		{name: "dry run: reported, nothing more", node: dead(time.Minute), inc: &Incident{Phase: PhasePaused, DryRun: true, Reported: true}, pol: func(p *Policy) { p.DryRun = true }, want: None, reason: ReasonDryRun},
		{name: "dry run policy on an open incident: report", node: dead(time.Minute), inc: &Incident{Phase: PhaseDetected}, pol: func(p *Policy) { p.DryRun = true }, want: ReportDryRun},

		{name: "released: track workloads", node: dead(time.Minute), inc: &Incident{Phase: PhaseReleased, Released: true, Fenced: true}, want: TrackWorkloads},
		{name: "workloads ready, node still dead: wait", node: dead(time.Minute), inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true}, want: None, reason: ReasonAwaitingNode},
		{name: "node back with the same bootID after power fence: keep taint", node: backSameBoot, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, RebootRequired: true, BootID: "boot-1"}, want: None, reason: ReasonAwaitingReboot},
		{name: "node back rebooted, within healthy delay: wait", node: backNewEarly, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, RebootRequired: true, BootID: "boot-1"}, want: None, reason: ReasonAwaitingHealthy, requeueGT: 19 * time.Second},
		{name: "node back rebooted and healthy long enough: recover", node: backNew, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, RebootRequired: true, BootID: "boot-1"}, want: Recover},
		{name: "no reboot needed (fence none): recover", node: back, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, BootID: "boot-1"}, want: Recover},
		{name: "delete-node: old object still there", node: dead(time.Minute), inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, DeleteNode: true, NodeUID: "uid-1"}, want: None, reason: ReasonAwaitingNode},
		{name: "delete-node: node not registered yet", node: gone, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, DeleteNode: true, NodeUID: "uid-1"}, want: None, reason: ReasonAwaitingNode},
		{name: "delete-node: node re-registered: recover", node: reregistered, inc: &Incident{Phase: PhaseWorkloadsReady, Released: true, WorkloadsReady: true, DeleteNode: true, NodeUID: "uid-1", RebootRequired: true, BootID: "boot-1"}, want: Recover},
		{name: "released even if paused later: keep tracking, never release again", node: dead(time.Minute), inc: &Incident{Phase: PhasePaused, Released: true}, cluster: storm, want: TrackWorkloads},
		{name: "recovered: closed", node: healthy(), inc: &Incident{Phase: PhaseRecovered}, want: None, reason: ReasonClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policy()
			if c.pol != nil {
				c.pol(&p)
			}
			cl := c.cluster
			if cl == (Cluster{}) {
				cl = cluster()
			}
			got := Decide(Input{Now: t0, Node: c.node, Incident: c.inc, Cluster: cl, Policy: p})
			if got.Action != c.want {
				t.Fatalf("action = %s (%s: %s), want %s", got.Action, got.Reason, got.Message, c.want)
			}
			if c.reason != "" && got.Reason != c.reason {
				t.Fatalf("reason = %s, want %s", got.Reason, c.reason)
			}
			if (c.requeue || c.requeueGT > 0) && got.RequeueAfter <= c.requeueGT {
				t.Fatalf("requeueAfter = %s, want > %s", got.RequeueAfter, c.requeueGT)
			}
		})
	}
}

// A node that is never released without fencing: over every phase and
// guard combination, Release is only returned for an incident that is
// fenced, not dry-run, with the guards clear and no heartbeat seen since
// detection (the node dead, a new leader's window not yet run, or the Node
// object deleted: then only its pods and attachments are released).
func TestReleaseOnlyAfterFence(t *testing.T) {
	phases := []Phase{PhaseDetected, PhaseFencing, PhaseFenced, PhaseFailed, PhasePaused}
	freshLeader := dead(time.Second)
	nodes := map[string]Node{"dead": dead(time.Minute), "fresh-leader": freshLeader, "renewed": func() Node { n := dead(time.Second); n.HeartbeatChanged = true; return n }(),
		"reregistered": func() Node { n := dead(time.Minute); n.UID = "uid-2"; return n }(), "gone": {Name: "x", FenceProvider: "wait"}}
	for _, ph := range phases {
		for _, fenced := range []bool{false, true} {
			for _, dry := range []bool{false, true} {
				for nname, n := range nodes {
					for _, cl := range []Cluster{cluster(), {Eligible: 10, Unhealthy: 9, APIHealthy: true}, {Eligible: 10, Unhealthy: 1}} {
						inc := &Incident{Phase: ph, Fenced: fenced, NodeUID: "uid-1"}
						p := policy()
						p.DryRun = dry
						d := Decide(Input{Now: t0, Node: n, Incident: inc, Cluster: cl, Policy: p})
						if d.Action != Release {
							continue
						}
						if !fenced || dry || nname == "renewed" || nname == "reregistered" || cl.Unhealthy > 2 || !cl.APIHealthy {
							t.Errorf("Release for phase=%s fenced=%v dry=%v node=%s cluster=%+v", ph, fenced, dry, nname, cl)
						}
					}
				}
			}
		}
	}
}
