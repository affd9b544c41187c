// Package decide holds liberator's decision logic: a pure function from the
// observed state of one node, its open incident, the cluster and the policy,
// at a given instant, to the next action. It imports no client (only the API
// types) and performs no side effects; the controller carries the decision
// out.
package decide

import (
	"fmt"
	"time"
)

// Unhealthy reports whether the node has gone without a heartbeat for the
// whole window, and how that was seen: its Lease unrenewed (LeaseExpired),
// or, for a node without a Lease, its Ready condition not True
// (NotReady). A node whose Lease renews is never unhealthy, whatever its
// Ready condition says: a renewing Lease is a live kubelet, and Ready=False
// or Unknown beside it comes from a kubelet restarting its runtime or
// network, or from the kube-controller-manager's own view, not from a dead
// node (see NotReadyLeaseLive).
func Unhealthy(n Node, window time.Duration) (bool, string) {
	if !n.Exists {
		return false, ""
	}
	if n.HasLease {
		if n.LeaseStaleFor >= window {
			return true, ReasonLeaseExpired
		}
		return false, ""
	}
	if !n.Ready && n.NotReadyFor >= window {
		return true, ReasonNotReady
	}
	return false, ""
}

// NotReadyLeaseLive reports whether the node has been NotReady for the
// whole window while its Lease keeps renewing: liberator reports it and
// takes nothing over.
func NotReadyLeaseLive(n Node, window time.Duration) bool {
	return n.Exists && n.HasLease && n.LeaseStaleFor < window && !n.Ready && n.NotReadyFor >= window
}

// UntilUnhealthy is how long until the window would close with no change
// (0: it has closed, or nothing is counting).
func UntilUnhealthy(n Node, window time.Duration) time.Duration {
	d := time.Duration(0)
	if n.HasLease {
		if n.LeaseStaleFor > 0 {
			d = window - n.LeaseStaleFor
		}
		return d
	}
	if !n.Ready {
		if r := window - n.NotReadyFor; d == 0 || r < d {
			d = r
		}
	}
	return d
}

// Decide returns the next action for one node. It is a pure function of its
// input.
func Decide(in Input) Decision {
	if in.Incident == nil {
		return decideNew(in)
	}
	return decideOpen(in)
}

func decideNew(in Input) Decision {
	n := in.Node
	if !n.Exists {
		return Decision{Action: None, Reason: ReasonClosed}
	}
	if !n.Eligible {
		return Decision{Action: None, Reason: ReasonNotEligible, Message: n.IneligibleReason}
	}
	bad, why := Unhealthy(n, in.Policy.UnhealthyAfter)
	if NotReadyLeaseLive(n, in.Policy.UnhealthyAfter) {
		return Decision{Action: None, Reason: ReasonNotReadyLeaseLive,
			Message: fmt.Sprintf("Ready not True for %s, but the node's Lease keeps renewing: its kubelet is alive, so nothing is taken over", n.NotReadyFor.Round(time.Second))}
	}
	if !bad {
		d := Decision{Action: None, Reason: ReasonHealthy}
		if r := UntilUnhealthy(n, in.Policy.UnhealthyAfter); r > 0 {
			d.Reason, d.RequeueAfter = ReasonWithinGrace, r
		}
		return d
	}
	if !in.Cluster.APIHealthy || in.Cluster.Blind {
		// Nothing is opened on a view that cannot be trusted.
		g := guards(in)
		return Decision{Action: None, Reason: g.Reason, Message: g.Message}
	}
	if in.Cluster.Paused {
		return Decision{Action: None, Reason: ReasonClusterPaused, Message: pausedMessage(in.Cluster.PauseNote, "no takeover is opened")}
	}
	msg := fmt.Sprintf("no Lease renewal seen for %s (unhealthyAfter %s)", n.LeaseStaleFor.Round(time.Second), in.Policy.UnhealthyAfter)
	if why == ReasonNotReady {
		msg = fmt.Sprintf("Ready not True for %s (unhealthyAfter %s)", n.NotReadyFor.Round(time.Second), in.Policy.UnhealthyAfter)
	}
	return Decision{Action: Open, Reason: why, Message: msg}
}

// guards returns a Pause decision when a guard holds remediation, or nil.
func guards(in Input) *Decision {
	c, p := in.Cluster, in.Policy
	if c.Blind {
		return &Decision{Action: Pause, Reason: ReasonViewBlind,
			Message: "no Lease renewal of any node seen for half the window: the API server, etcd or a watch is down; nothing is remediated, and every window restarts when renewals are seen again"}
	}
	if bad := c.Unhealthy + c.Suspect; bad > p.MaxUnhealthy {
		msg := fmt.Sprintf("%d of %d eligible nodes are unhealthy, more than the %d allowed (maxUnhealthy); nothing is remediated", c.Unhealthy, c.Eligible, p.MaxUnhealthy)
		if c.Suspect > 0 {
			msg = fmt.Sprintf("%d of %d eligible nodes are unhealthy and %d more have missed half a window of renewals, more than the %d allowed (maxUnhealthy); nothing is remediated", c.Unhealthy, c.Eligible, c.Suspect, p.MaxUnhealthy)
		}
		return &Decision{Action: Pause, Reason: ReasonStormGuard, Message: msg}
	}
	if !c.APIHealthy {
		return &Decision{Action: Pause, Reason: ReasonAPIUnreliable,
			Message: "the controller's own API calls are failing; nothing is remediated until they succeed"}
	}
	return nil
}

func decideOpen(in Input) Decision {
	n, inc := in.Node, in.Incident
	switch inc.Phase {
	case PhaseRecovered:
		return Decision{Action: None, Reason: ReasonClosed}
	case PhaseReleased, PhaseWorkloadsReady:
		return decideReleased(in)
	}
	if inc.Released {
		return decideReleased(in)
	}

	if inc.ReleaseStarted {
		// A destructive step happened: the incident rolls forward, whatever
		// the storm guard says now (but not on a view it cannot trust); a
		// heartbeat stops further deletions and the release is recorded as
		// it stands.
		if c := in.Cluster; !c.APIHealthy || c.Blind {
			return *guards(in)
		}
		if n.HeartbeatChanged || replaced(n, inc) {
			return Decision{Action: Release, Reason: ReasonReleaseInterrupted,
				Message: "the node's heartbeat was seen after the release began: nothing more is deleted, and what was released is recorded"}
		}
		return Decision{Action: Release, Reason: ReasonFenced}
	}

	// Not released yet: Detected, Fencing, Fenced, Failed or Paused. An
	// incident ends before release only on a heartbeat seen to change since
	// detection, never because this controller's own window has not run
	// yet (a new leader starts its windows afresh).
	if n.HeartbeatChanged || replaced(n, inc) {
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: "the node's heartbeat resumed before release; nothing was released"}
	}
	if !n.Exists {
		return decideGone(in)
	}
	if !n.Eligible {
		return Decision{Action: Abort, Reason: ReasonOptedOut, Message: "the node is no longer eligible: " + n.IneligibleReason}
	}
	if g := guards(in); g != nil {
		return *g
	}
	if !inc.Fenced {
		if bad, _ := Unhealthy(n, in.Policy.UnhealthyAfter); !bad {
			// No heartbeat seen since detection, but this controller has not
			// itself watched the node for a whole window (it is a new leader,
			// or its windows restarted after a blind spell): it waits for its
			// own window before fencing. Longer, never shorter.
			return Decision{Action: None, Reason: ReasonWithinGrace, RequeueAfter: max(UntilUnhealthy(n, in.Policy.UnhealthyAfter), time.Second),
				Message: "no heartbeat seen since detection; waiting for this controller's own window before fencing"}
		}
	}
	if d := dryRun(in); d != nil {
		return *d
	}
	if inc.Fenced {
		return Decision{Action: Release, Reason: ReasonFenced}
	}
	if inc.ConfirmedOffBy != "" {
		return confirmOff(inc)
	}
	if n.FenceProvider == "" {
		return Decision{Action: Pause, Reason: ReasonUnfenceable,
			Message: "no fence class in the configuration matches this node, so it cannot be proven off and is never released; add a fence class for it, or, once you have made sure that it is off, run: " + confirmCommand(n.Name)}
	}
	if d := awaitConfirmOff(n); d != nil {
		return *d
	}
	if inc.Phase == PhaseFailed {
		if d := retryWait(in); d != nil {
			return *d
		}
	}
	if d := clusterPaused(in); d != nil {
		return *d
	}
	if inc.Phase != PhaseFencing && in.Cluster.Active >= in.Policy.MaxConcurrent {
		return Decision{Action: Pause, Reason: ReasonMaxConcurrent,
			Message: fmt.Sprintf("%d takeovers are already under way (maxConcurrent %d)", in.Cluster.Active, in.Policy.MaxConcurrent)}
	}
	return Decision{Action: Fence, Reason: inc.reasonToFence()}
}

// replaced reports whether the Node object is another one than the
// incident's: it re-registered, so its kubelet is alive.
func replaced(n Node, inc *Incident) bool {
	return n.Exists && inc.NodeUID != "" && n.UID != inc.NodeUID
}

// decideGone decides for an incident whose Node object was deleted by
// someone else before release. Kubernetes now garbage-collects the node's
// pods and recreates them elsewhere while the node, perhaps only cut off,
// may still run them: the node is fenced by name (its class is the one
// recorded on the incident) before anything else, then its pods and
// attachments are released.
func decideGone(in Input) Decision {
	n, inc := in.Node, in.Incident
	if g := guards(in); g != nil {
		return *g
	}
	if d := dryRun(in); d != nil {
		return *d
	}
	if inc.Fenced {
		return Decision{Action: Release, Reason: ReasonNodeGoneBeforeFence, Message: "the Node object was deleted; the node is fenced, its pods and attachments are released"}
	}
	leaseRenews := n.HasLease && n.LeaseStaleFor < in.Policy.UnhealthyAfter
	if inc.ConfirmedOffBy != "" && !leaseRenews {
		return confirmOff(inc)
	}
	if n.FenceProvider == "" {
		return Decision{Action: Pause, Reason: ReasonUnfenceable,
			Message: "the Node object was deleted and no fence class is recorded for it, so it cannot be proven off and is never released; once you have made sure that it is off, run: " + confirmCommand(n.Name)}
	}
	if d := awaitConfirmOff(n); d != nil && !leaseRenews {
		return *d
	}
	if leaseRenews {
		// The Lease outlived the Node and still renews: the kubelet is alive.
		// The node is fenced by name only once its Lease stays silent for a
		// whole window on this controller's clock (it is detected anew).
		return Decision{Action: None, Reason: ReasonWithinGrace, RequeueAfter: max(in.Policy.UnhealthyAfter-n.LeaseStaleFor, time.Second),
			Message: "the Node object was deleted but its Lease renews: its kubelet is alive; it is fenced by name once the Lease stays silent for a whole window"}
	}
	if inc.Phase == PhaseFailed {
		if d := retryWait(in); d != nil {
			return *d
		}
	}
	if d := clusterPaused(in); d != nil {
		return *d
	}
	return Decision{Action: Fence, Reason: inc.reasonToFence(), Message: "the Node object was deleted; the node is fenced by name before its pods are released"}
}

// clusterPaused holds, while liberator is paused, an incident that is
// about to be fenced (first, again after a failure, or its provider asked
// again while it counts); nil when not paused. It is the last check before
// Fence: everything that would not fence (an abort on a heartbeat, a
// release of a node proven off, another guard) goes as it would.
func clusterPaused(in Input) *Decision {
	if !in.Cluster.Paused {
		return nil
	}
	d := PausedHold(in.Cluster.PauseNote)
	return &d
}

// PausedHold is the decision that holds an incident about to be fenced
// while liberator is paused; note says by whom, since when and why.
func PausedHold(note string) Decision {
	return Decision{Action: Pause, Reason: ReasonClusterPaused, Message: pausedMessage(note, "nothing is fenced")}
}

func pausedMessage(note, what string) string {
	return fmt.Sprintf("liberator is paused (%s); %s until liberator resume", note, what)
}

// ProviderNone is the fence provider that fences nothing (the
// configuration's provider none).
const ProviderNone = "none"

// confirmOff takes the operator's statement that the node is off; the
// controller re-reads the node live first (BeforeConfirmOff).
func confirmOff(inc *Incident) Decision {
	return Decision{Action: ConfirmOff, Reason: ReasonConfirmedOff,
		Message: "confirmed off by " + inc.ConfirmedOffBy}
}

// awaitConfirmOff holds an incident whose class has no automatic fence
// (provider none without releaseUnproven) until an operator states that
// the node is off; nil for any other class.
func awaitConfirmOff(n Node) *Decision {
	if n.FenceProvider != ProviderNone || n.ReleaseUnproven {
		return nil
	}
	return &Decision{Action: Pause, Reason: ReasonAwaitingConfirmOff,
		Message: "the node's fence class has no automatic fence (provider none), so nothing is released until an operator who has made sure that the node is off runs: " + confirmCommand(n.Name)}
}

// confirmCommand is the command that states a node is off.
func confirmCommand(node string) string {
	return "liberator confirm-off " + node + " --reason '...'"
}

// dryRun reports, once, what would be done while the policy in force is a
// dry run; nil otherwise. An incident opened in dry run acts once dry run
// is off.
func dryRun(in Input) *Decision {
	if !in.Policy.DryRun {
		return nil
	}
	if in.Incident.Reported {
		return &Decision{Action: None, Reason: ReasonDryRun}
	}
	return &Decision{Action: ReportDryRun, Reason: ReasonDryRun}
}

// retryWait holds a failed incident until its next retry, or for good once
// the attempts are used up; nil when a retry may start.
func retryWait(in Input) *Decision {
	inc := in.Incident
	if in.Policy.MaxAttempts > 0 && inc.FenceAttempts >= in.Policy.MaxAttempts {
		return &Decision{Action: None, Reason: ReasonRetriesExhausted,
			Message: fmt.Sprintf("fencing failed %d times (retry.maxAttempts); the incident waits for an operator", inc.FenceAttempts)}
	}
	if wait := inc.NextRetry.Sub(in.Now); wait > 0 {
		return &Decision{Action: None, Reason: ReasonRetryBackoff, RequeueAfter: wait}
	}
	return nil
}

func (inc *Incident) reasonToFence() string {
	if inc.Phase == PhaseFailed {
		return ReasonRetryFence
	}
	return ReasonUnhealthy
}

func decideReleased(in Input) Decision {
	n, inc, p := in.Node, in.Incident, in.Policy
	if !inc.WorkloadsReady {
		return Decision{Action: TrackWorkloads, Reason: ReasonAwaitingWorkloads}
	}
	if !n.Exists {
		return Decision{Action: None, Reason: ReasonAwaitingNode}
	}
	if inc.DeleteNode && inc.NodeUID != "" && n.UID == inc.NodeUID {
		// The old Node object is still there (its deletion has not finished).
		return Decision{Action: None, Reason: ReasonAwaitingNode}
	}
	if bad, _ := Unhealthy(n, p.UnhealthyAfter); bad || n.HealthyFor <= 0 {
		return Decision{Action: None, Reason: ReasonAwaitingNode}
	}
	if inc.RebootRequired && n.BootID == inc.BootID {
		return Decision{Action: None, Reason: ReasonAwaitingReboot,
			Message: "the node answers again but its bootID is unchanged: it was not proven to have rebooted, so liberator keeps its taint"}
	}
	if wait := p.HealthyDelay - n.HealthyFor; wait > 0 {
		return Decision{Action: None, Reason: ReasonAwaitingHealthy, RequeueAfter: wait}
	}
	return Decision{Action: Recover, Reason: ReasonNodeRecovered}
}
