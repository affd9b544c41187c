package decide

// Reasons: every reason liberator writes, on a Takeover's phase, in its
// timeline, on events and in logs, is one of these.
const (
	// Reasons of decisions.
	ReasonHealthy             = "Healthy"
	ReasonNotEligible         = "NotEligible"
	ReasonLeaseExpired        = "LeaseExpired"
	ReasonNotReady            = "NotReady"
	ReasonWithinGrace         = "WithinGraceWindow"
	ReasonStormGuard          = "StormGuard"
	ReasonAPIUnreliable       = "APIUnreliable"
	ReasonUnfenceable         = "Unfenceable"
	ReasonMaxConcurrent       = "MaxConcurrent"
	ReasonRetryBackoff        = "RetryBackoff"
	ReasonRetriesExhausted    = "RetriesExhausted"
	ReasonHeartbeatResumed    = "HeartbeatResumed"
	ReasonOptedOut            = "OptedOut"
	ReasonDryRun              = "DryRun"
	ReasonFenced              = "Fenced"
	ReasonAwaitingWorkloads   = "AwaitingWorkloads"
	ReasonWorkloadsReady      = "WorkloadsReady"
	ReasonWorkloadTimeout     = "WorkloadTimeout"
	ReasonAwaitingNode        = "AwaitingNodeReturn"
	ReasonAwaitingReboot      = "AwaitingReboot"
	ReasonAwaitingHealthy     = "AwaitingHealthyDelay"
	ReasonNodeRecovered       = "NodeRecovered"
	ReasonClosed              = "Closed"
	ReasonNodeGoneBeforeFence = "NodeDeleted"
	ReasonUnhealthy           = "Unhealthy"
	ReasonRetryFence          = "RetryFence"
	ReasonNotReadyLeaseLive   = "NotReadyLeaseRenewing"
	ReasonReleaseInterrupted  = "ReleaseInterrupted"
	ReasonViewBlind           = "ViewBlind"
	ReasonCacheLags           = "CacheLags"
	ReasonRedetected          = "Redetected"
	// ReasonClusterPaused: liberator is paused (liberator pause): no
	// incident is opened and no node is fenced until liberator resume.
	ReasonClusterPaused = "ClusterPaused"
	// ReasonAwaitingConfirmOff: the node's class has no automatic fence
	// (provider none): an operator's confirm-off is awaited.
	ReasonAwaitingConfirmOff = "AwaitingConfirmOff"
	// ReasonConfirmedOff: an operator stated that the node is off.
	ReasonConfirmedOff = "ConfirmedOff"

	// Reasons of the steps the controller records.
	ReasonFenceStarted  = "FenceStarted"
	ReasonFencedUnsafe  = "FencedUnsafe"
	ReasonFenceFailed   = "FenceFailed"
	ReasonReleased      = "Released"
	ReasonReleaseFailed = "ReleaseFailed"

	// EventWatchdogNotFired: a node fenced by its watchdog (provider wait)
	// returned with its boot ID unchanged.
	EventWatchdogNotFired = "WatchdogNotFired"

	// Reasons of events only.
	EventTakeoverDetected = "TakeoverDetected"
	EventFencing          = "Fencing"
	EventTakeoverAborted  = "TakeoverAborted"
	EventRecovered        = "Recovered"
	EventPodReleased      = "PodReleased"
	EventPodReady         = "PodReady"
	EventFenceReady       = "FenceReady"
	EventFenceNotReady    = "FenceNotReady"
	// EventConfirmOffRefused: an operator's confirm-off was refused, the
	// node's heartbeat being live.
	EventConfirmOffRefused = "ConfirmOffRefused"

	// Reasons of conditions on a Takeover.
	ReasonPoweredOn     = "PoweredOn"
	ReasonPowerOnFailed = "PowerOnFailed"
	ReasonStormClear    = "Clear"
)
