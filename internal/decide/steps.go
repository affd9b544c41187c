package decide

import (
	"fmt"
	"strings"
	"time"
)

// Live is what a live re-read of the Node and its Lease from the API server
// showed, right before the first destructive call of a release.
type Live struct {
	// Exists is false when the Node object is gone.
	Exists bool
	// UID of the live Node.
	UID string
	// HeartbeatChanged is true when the live heartbeat fingerprint differs
	// from the one recorded at detection: the node is alive.
	HeartbeatChanged bool
	// Detail says what changed, for the message.
	Detail string
}

// BeforeRelease decides, on the live re-read, whether a fenced incident's
// release may go on (Action Release) or must stop (Action Abort).
func BeforeRelease(inc *Incident, live Live) Decision {
	switch {
	case !live.Exists:
		return Decision{Action: Abort, Reason: ReasonNodeGoneBeforeFence, Message: "the Node was deleted before release"}
	case live.HeartbeatChanged:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: live.Detail}
	case live.UID != inc.NodeUID:
		return Decision{Action: Abort, Reason: ReasonNodeGoneBeforeFence, Message: "the Node was replaced before release"}
	}
	return Decision{Action: Release, Reason: ReasonFenced}
}

// Workloads is where a released incident's pods stand.
type Workloads struct {
	// Moved counts the released pods; Waiting names those whose replacement
	// is not Ready elsewhere yet.
	Moved   int
	Waiting []string
	// SinceRelease is how long since the release completed.
	SinceRelease time.Duration
	// Timeout is the configured workloadTimeout.
	Timeout time.Duration
}

// WorkloadsPoll is how often released workloads are looked at while none
// of their pods changes.
const WorkloadsPoll = 5 * time.Second

// TrackDecision decides whether a released incident's workloads are done:
// every replacement Ready (WorkloadsReady), or the timeout passed with some
// not Ready (WorkloadTimeout); otherwise keep tracking.
func TrackDecision(w Workloads) Decision {
	if len(w.Waiting) == 0 {
		return Decision{Action: WorkloadsDone, Reason: ReasonWorkloadsReady,
			Message: fmt.Sprintf("released workloads Ready on other nodes: %d", w.Moved)}
	}
	if w.SinceRelease > w.Timeout {
		return Decision{Action: WorkloadsDone, Reason: ReasonWorkloadTimeout,
			Message: fmt.Sprintf("workloadTimeout %s passed with %d pods not Ready elsewhere: %s", w.Timeout, len(w.Waiting), strings.Join(w.Waiting, ", "))}
	}
	return Decision{Action: TrackWorkloads, Reason: ReasonAwaitingWorkloads, RequeueAfter: WorkloadsPoll}
}
