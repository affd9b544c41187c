// Package decide holds liberator's decision logic: a pure function from the
// observed state of one node, its open incident, the cluster and the policy,
// at a given instant, to the next action. It imports no client (only the API
// types) and performs no side effects; the controller carries the decision
// out.
package decide

import (
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// Action is what the controller does next for a node.
type Action string

// The actions, in the order an incident meets them.
const (
	// None: nothing to do; RequeueAfter, when set, says when to look again.
	None Action = "None"
	// Open records a new incident (a Takeover in phase Detected).
	Open Action = "Open"
	// Pause holds the incident (phase Paused) for the reason given.
	Pause Action = "Pause"
	// Fence proves the node is off through its fence provider.
	Fence Action = "Fence"
	// Release frees the fenced node's workloads by the configured strategy.
	Release Action = "Release"
	// TrackWorkloads watches the released pods come back Ready elsewhere.
	TrackWorkloads Action = "TrackWorkloads"
	// WorkloadsDone records that the released workloads are Ready elsewhere
	// (or that the workload timeout passed); only TrackDecision returns it.
	WorkloadsDone Action = "WorkloadsDone"
	// Recover removes what liberator added to the node and closes the incident.
	Recover Action = "Recover"
	// Abort closes an incident whose node came back before it was released.
	Abort Action = "Abort"
	// ReportDryRun records what would be done, in dry-run mode.
	ReportDryRun Action = "ReportDryRun"
)

// Phase is a Takeover phase.
type Phase = v1alpha1.Phase

// Takeover phases.
const (
	PhaseDetected       = v1alpha1.PhaseDetected
	PhaseFencing        = v1alpha1.PhaseFencing
	PhaseFenced         = v1alpha1.PhaseFenced
	PhaseReleased       = v1alpha1.PhaseReleased
	PhaseWorkloadsReady = v1alpha1.PhaseWorkloadsReady
	PhaseRecovered      = v1alpha1.PhaseRecovered
	PhaseFailed         = v1alpha1.PhaseFailed
	PhasePaused         = v1alpha1.PhasePaused
)

// Node is what the controller observed of a node. Durations are measured on
// the controller's own monotonic clock.
type Node struct {
	Name string
	// Exists is false when there is no Node object (deleted, or not yet
	// re-registered).
	Exists bool
	// UID of the Node object.
	UID string
	// Eligible is false for nodes liberator must not touch: control-plane
	// nodes (by default), nodes outside the selector, nodes opted out.
	Eligible bool
	// IneligibleReason says why, when Eligible is false.
	IneligibleReason string
	// HasLease is true when the node has a Lease in kube-node-lease.
	HasLease bool
	// LeaseStaleFor is how long since the controller last saw the Lease's
	// renewTime change (or first saw the Lease).
	LeaseStaleFor time.Duration
	// Ready is the observed Ready condition is True.
	Ready bool
	// NotReadyFor is how long Ready has been continuously observed not True.
	NotReadyFor time.Duration
	// HealthyFor is how long the node has been continuously healthy (lease
	// renewing and Ready True), zero when it is not.
	HealthyFor time.Duration
	// BootID is status.nodeInfo.bootID.
	BootID string
	// FenceProvider is the provider of the node's fence class, "" when no
	// class matches (the node is unfenceable). For a node whose object is
	// gone it is the class recorded on the incident.
	FenceProvider string
	// HeartbeatChanged is true when, with an incident open, the controller
	// has seen the node's heartbeat (Lease renewTime, Ready heartbeat)
	// differ from the one recorded at detection: the node is alive.
	HeartbeatChanged bool
}

// Incident is what the controller knows of the node's open Takeover.
type Incident struct {
	Phase Phase
	// NodeUID is the UID of the Node when the incident opened.
	NodeUID string
	// Fenced is true once fencing succeeded for this incident; it stays true
	// through Paused and Failed, so a resumed incident is never fenced twice.
	Fenced bool
	// Released is true once the release step completed.
	Released bool
	// ReleaseStarted is true once the release step was about to make its
	// first destructive call (recorded before it).
	ReleaseStarted bool
	// RebootRequired: recovery needs a bootID other than BootID.
	RebootRequired bool
	BootID         string
	// DryRun incidents only report.
	DryRun bool
	// Reported is true once a dry-run incident recorded its report.
	Reported bool
	// FenceAttempts made so far, and when the next may start.
	FenceAttempts int
	NextRetry     time.Time
	// WorkloadsReady: every released pod with an owner is Ready elsewhere (or
	// the workload timeout passed).
	WorkloadsReady bool
	// DeleteNode is true when the strategy deletes the Node object.
	DeleteNode bool
}

// Cluster is the view across nodes that the guards need.
type Cluster struct {
	// Eligible and Unhealthy count eligible nodes and the unhealthy ones among
	// them.
	Eligible, Unhealthy int
	// APIHealthy is false while the controller's own API calls fail.
	APIHealthy bool
	// Blind is true while no Lease renewal of any node has been seen for
	// half a window: the API server, etcd or the watch is down, and a
	// silent node proves nothing.
	Blind bool
	// Suspect counts eligible nodes not yet unhealthy whose Lease has gone
	// unrenewed for half the window: the storm guard counts them with the
	// unhealthy ones, so that a partitioned group whose windows close over
	// one renewal interval is held as a whole, not let through one by one.
	Suspect int
	// Active counts other incidents between fencing and release (phases
	// Fencing and Fenced), which use the concurrency budget.
	Active int
}

// Policy is the configuration the decision needs.
type Policy struct {
	UnhealthyAfter time.Duration
	HealthyDelay   time.Duration
	// MaxUnhealthy is the storm threshold already resolved against Eligible.
	MaxUnhealthy  int
	MaxConcurrent int
	// MaxAttempts bounds fence attempts; 0 means no limit.
	MaxAttempts int
	DryRun      bool
}

// Input is everything a decision depends on.
type Input struct {
	Now      time.Time
	Node     Node
	Incident *Incident // nil when no incident is open for the node
	Cluster  Cluster
	Policy   Policy
}

// Decision is the next action and why.
type Decision struct {
	Action Action
	Reason string
	// Message explains the reason in words.
	Message string
	// RequeueAfter, when positive, is when to look at the node again even if
	// nothing changes.
	RequeueAfter time.Duration
}

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

// untilUnhealthy is how long until the window would close with no change.
func untilUnhealthy(n Node, window time.Duration) time.Duration {
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
		if r := untilUnhealthy(n, in.Policy.UnhealthyAfter); r > 0 {
			d.Reason, d.RequeueAfter = ReasonWithinGrace, r
		}
		return d
	}
	if !in.Cluster.APIHealthy || in.Cluster.Blind {
		// Nothing is opened on a view that cannot be trusted.
		g := guards(in)
		return Decision{Action: None, Reason: g.Reason, Message: g.Message}
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
		// the guards say now; a heartbeat stops further deletions and the
		// release is recorded as it stands.
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
			return Decision{Action: None, Reason: ReasonWithinGrace, RequeueAfter: max(untilUnhealthy(n, in.Policy.UnhealthyAfter), time.Second),
				Message: "no heartbeat seen since detection; waiting for this controller's own window before fencing"}
		}
	}
	if d := dryRun(in); d != nil {
		return *d
	}
	if inc.Fenced {
		return Decision{Action: Release, Reason: ReasonFenced}
	}
	if n.FenceProvider == "" {
		return Decision{Action: Pause, Reason: ReasonUnfenceable,
			Message: "no fence class in the configuration matches this node, so it cannot be proven off and is never released; add a fence class (provider wait, none, or a power fence) for it"}
	}
	if inc.Phase == PhaseFailed {
		if d := retryWait(in); d != nil {
			return *d
		}
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
	if n.FenceProvider == "" {
		return Decision{Action: Pause, Reason: ReasonUnfenceable,
			Message: "the Node object was deleted and no fence class is recorded for it, so it cannot be proven off and is never released"}
	}
	if inc.Phase == PhaseFailed {
		if d := retryWait(in); d != nil {
			return *d
		}
	}
	return Decision{Action: Fence, Reason: inc.reasonToFence(), Message: "the Node object was deleted; the node is fenced by name before its pods are released"}
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
