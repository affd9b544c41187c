package decide

import (
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
	// Redetect starts an incident over: a deleted Node's Lease was read
	// live and renewed since detection, so the node is not proven silent;
	// the new heartbeat becomes the fingerprint, any fence is void, and the
	// node is fenced by name only once it stays silent for a whole window.
	Redetect Action = "Redetect"
	// ReportDryRun records what would be done, in dry-run mode.
	ReportDryRun Action = "ReportDryRun"
	// ConfirmOff takes an operator's statement that the node is off
	// (liberator confirm-off) as its fence, after a live re-read
	// (BeforeConfirmOff).
	ConfirmOff Action = "ConfirmOff"
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
	// ReleaseUnproven is the class's releaseUnproven (provider none
	// only): its nodes are released without proof. Without it a provider
	// none class has no automatic fence, and its nodes wait for an
	// operator's confirm-off.
	ReleaseUnproven bool
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
	// ConfirmedOffBy names the operator who stated that the node is off
	// (liberator confirm-off) for this incident as it stands; "" when
	// nobody did, or the statement was made before the incident started
	// over.
	ConfirmedOffBy string
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
	// Paused is true while an operator has paused liberator (liberator
	// pause): no incident is opened and no node is fenced; an incident
	// whose node is proven off goes on to release. PauseNote says by whom,
	// since when and why.
	Paused    bool
	PauseNote string
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
