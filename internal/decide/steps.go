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
	// from the one recorded at detection: the node is alive. For a deleted
	// Node it is its Lease's renewTime, read live.
	HeartbeatChanged bool
	// Detail says what changed, for the message.
	Detail string
}

// BeforeRelease decides, on the live re-read, whether a fenced incident's
// release may go on (Action Release) or must stop (Action Abort). A Node
// deleted meanwhile is released without the Node step (its pods and
// attachments only). Once the release began, a heartbeat no longer aborts:
// the release is recorded as it stands (ReleaseInterrupted).
func BeforeRelease(inc *Incident, live Live) Decision {
	alive := live.HeartbeatChanged || (live.Exists && live.UID != inc.NodeUID)
	switch {
	case alive && inc.ReleaseStarted:
		return Decision{Action: Release, Reason: ReasonReleaseInterrupted,
			Message: "the node's heartbeat was seen after the release began: nothing more is deleted, and what was released is recorded"}
	case !live.Exists && live.HeartbeatChanged:
		return redetect(live)
	case live.HeartbeatChanged:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: live.Detail}
	case alive:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: "the Node was replaced before release (it re-registered: its kubelet is alive); nothing was released"}
	case !live.Exists:
		return Decision{Action: Release, Reason: ReasonNodeGoneBeforeFence, Message: "the Node object was deleted; its pods and attachments are released"}
	}
	return Decision{Action: Release, Reason: ReasonFenced}
}

// BeforeFence decides, on a live re-read right before the first fence call
// of an attempt, whether fencing may go on: a heartbeat seen to change
// since detection, or a re-registered Node, stops it; a deleted Node is
// still fenced, by name.
func BeforeFence(inc *Incident, live Live) Decision {
	switch {
	case !live.Exists && live.HeartbeatChanged:
		return redetect(live)
	case live.HeartbeatChanged:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: live.Detail}
	case live.Exists && live.UID != inc.NodeUID:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: "the Node re-registered before fencing (its kubelet is alive); nothing was fenced or released"}
	}
	return Decision{Action: Fence, Reason: inc.reasonToFence()}
}

// BeforeConfirmOff decides, on a live re-read, whether an operator's
// statement that the node is off may be taken as its fence.
// It is BeforeFence's check: a heartbeat seen to change since detection,
// or a re-registered Node, refuses it (the node is alive, whatever was
// said) and closes the incident; a deleted Node whose Lease renewed
// starts the incident over, and the statement, made for the incident as
// it was, no longer counts.
func BeforeConfirmOff(inc *Incident, live Live) Decision {
	d := BeforeFence(inc, live)
	if d.Action == Fence {
		return confirmOff(inc)
	}
	d.Message = "confirm-off by " + inc.ConfirmedOffBy + " refused: the node's heartbeat is live; " + d.Message
	return d
}

// ConfirmResumed decides, on a live re-read, whether a heartbeat the cache
// showed really resumed: only a live change (or a re-registered Node)
// closes the incident. A cache that lags (another replica recorded a newer
// fingerprint than this one has seen) closes nothing; the node is looked at
// again shortly.
func ConfirmResumed(inc *Incident, live Live) Decision {
	switch {
	case live.HeartbeatChanged:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: "the node's heartbeat resumed before release (confirmed by a live read); nothing was released"}
	case live.Exists && live.UID != inc.NodeUID:
		return Decision{Action: Abort, Reason: ReasonHeartbeatResumed, Message: "the Node re-registered before release (its kubelet is alive); nothing was released"}
	}
	return Decision{Action: None, Reason: ReasonCacheLags, RequeueAfter: time.Second,
		Message: "the cache showed a heartbeat the API server does not: the cache lags; nothing is closed"}
}

// redetect starts over an incident whose Node is gone but whose Lease was
// read live renewed since detection.
func redetect(live Live) Decision {
	return Decision{Action: Redetect, Reason: ReasonRedetected,
		Message: "the Node object is gone but its Lease renewed since detection (" + live.Detail + "): the node is not proven silent; it is fenced by name once its Lease stays silent for a whole window"}
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
