package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where an incident stands.
// +kubebuilder:validation:Enum=Detected;Fencing;Fenced;Released;WorkloadsReady;Recovered;Failed;Paused
type Phase string

// The phases of a Takeover, in the order a successful one passes them.
const (
	PhaseDetected       Phase = "Detected"
	PhaseFencing        Phase = "Fencing"
	PhaseFenced         Phase = "Fenced"
	PhaseReleased       Phase = "Released"
	PhaseWorkloadsReady Phase = "WorkloadsReady"
	PhaseRecovered      Phase = "Recovered"
	// PhaseFailed means a step failed (the reason says which); the controller
	// retries it by policy. Nothing is released from Failed.
	PhaseFailed Phase = "Failed"
	// PhasePaused means a guard (storm guard, concurrency, unfenceable node)
	// holds the takeover; it continues when the guard lifts.
	PhasePaused Phase = "Paused"
)

// Closed reports whether the incident is over.
func (p Phase) Closed() bool { return p == PhaseRecovered }

// Strategy is how a fenced node's workloads are released.
// +kubebuilder:validation:Enum=OutOfServiceTaint;DeleteNode;ForceDelete
type Strategy string

// The release strategies.
const (
	StrategyOutOfServiceTaint Strategy = "OutOfServiceTaint"
	StrategyDeleteNode        Strategy = "DeleteNode"
	StrategyForceDelete       Strategy = "ForceDelete"
)

// TakeoverSpec says which node the incident is about and how it is handled.
type TakeoverSpec struct {
	// NodeName is the node that failed.
	NodeName string `json:"nodeName"`
	// NodeUID is the UID of the Node object when the incident began; a node
	// that re-registers gets a new UID.
	// +optional
	NodeUID string `json:"nodeUID,omitempty"`
	// Strategy is the release strategy chosen for this incident.
	Strategy Strategy `json:"strategy"`
	// FenceProvider is the fence provider chosen for this node.
	FenceProvider string `json:"fenceProvider"`
	// FenceClass is the fence class chosen for this node, so that a node
	// whose object is deleted mid-incident can still be fenced by name.
	// +optional
	FenceClass string `json:"fenceClass,omitempty"`
	// Heartbeat is the node's heartbeat fingerprint when the incident was
	// detected (its Lease renewTime and Ready lastHeartbeatTime), written
	// with the object itself so that no crash can leave an incident without
	// it. An incident ends before release only when a heartbeat is seen to
	// differ from it.
	// +optional
	Heartbeat string `json:"heartbeat,omitempty"`
	// BootID is the node's bootID when the incident was detected.
	// +optional
	BootID string `json:"bootID,omitempty"`
	// DryRun records what would be done without doing it.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// ConfirmedOff is an operator's statement that the node is powered
	// off (`liberator confirm-off NODE`), Kubernetes' non-graceful node
	// shutdown: the controller takes it as the proof a fence gives, for
	// this incident only, after the same live checks it makes before a
	// fence; it refuses it while the node's heartbeat is live.
	// +optional
	ConfirmedOff *ConfirmedOff `json:"confirmedOff,omitempty"`
}

// ConfirmedOff is who stated that the node is off, when and why.
type ConfirmedOff struct {
	// By is the user who stated it, as the API server authenticated them
	// (a SelfSubjectReview).
	// +kubebuilder:validation:MinLength=1
	By string `json:"by"`
	// Time is when it was stated.
	Time metav1.Time `json:"time"`
	// Reason is the operator's word on how they know the node is off
	// ("pulled the plug").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Reason string `json:"reason"`
	// Heartbeat is the incident's heartbeat fingerprint (status.heartbeat,
	// or spec.heartbeat) the statement was made against: an incident
	// started over since (a new fingerprint) is not covered by it.
	// +kubebuilder:validation:MinLength=1
	Heartbeat string `json:"heartbeat"`
}

// PhaseTransition is one step of the timeline. A step that repeats (a
// fence retried, a guard that holds again) is one entry with a count.
type PhaseTransition struct {
	Phase Phase `json:"phase"`
	// Time is when the phase was entered, to the microsecond (fencing and
	// release take well under a second); for a repeated entry, the first
	// time.
	Time metav1.MicroTime `json:"time"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is the last message of the entry, at most 512 bytes.
	// +optional
	Message string `json:"message,omitempty"`
	// Count is how many times the entry was entered, when more than once.
	// +optional
	Count int32 `json:"count,omitempty"`
	// LastTime is when a repeated entry was last entered.
	// +optional
	LastTime *metav1.MicroTime `json:"lastTime,omitempty"`
}

// Times is how many times the entry was entered (Count, or 1).
func (p *PhaseTransition) Times() int32 { return max(p.Count, 1) }

// MovedPod is a pod released from the failed node.
type MovedPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID of the released pod.
	// +optional
	UID string `json:"uid,omitempty"`
	// OwnerKind, OwnerName, OwnerUID and OwnerAPIVersion name the pod's
	// controller (StatefulSet, ReplicaSet, ...), which recreates it
	// elsewhere.
	// +optional
	OwnerKind string `json:"ownerKind,omitempty"`
	// +optional
	OwnerName string `json:"ownerName,omitempty"`
	// +optional
	OwnerUID string `json:"ownerUID,omitempty"`
	// +optional
	OwnerAPIVersion string `json:"ownerAPIVersion,omitempty"`
	// SiblingUIDs are the UIDs of the owner's other pods when this pod was
	// released (not for a StatefulSet, whose replacement keeps the name):
	// none of them is its replacement.
	// +optional
	SiblingUIDs []string `json:"siblingUIDs,omitempty"`
	// ReplacementName is the pod that took over (the same name for a
	// StatefulSet pod).
	// +optional
	ReplacementName string `json:"replacementName,omitempty"`
	// ReplacementNode is the node the replacement runs on.
	// +optional
	ReplacementNode string `json:"replacementNode,omitempty"`
	// ScheduledTime is when a replacement was first seen bound to a node
	// other than the failed one, on the controller's clock (when it saw
	// the binding, not when the scheduler made it). It is cleared if that
	// replacement goes away before it is Ready, so that it belongs to the
	// replacement that took over.
	// +optional
	ScheduledTime *metav1.MicroTime `json:"scheduledTime,omitempty"`
	// ReadyTime is when the replacement was first seen Ready.
	// +optional
	ReadyTime *metav1.MicroTime `json:"readyTime,omitempty"`
}

// Downtime is where the seconds of a takeover went, from the last heartbeat
// the controller saw to the moved workloads Ready elsewhere. Every instant
// is on the controller's own clock; a part whose ends were not both
// recorded is left out, and none is ever negative (a clock that stepped
// back between two leaders counts as zero). The parts follow one another:
// when all are present they add up to Total.
type Downtime struct {
	// Total runs from lastHeartbeatSeen to the last moved pod's replacement
	// Ready (to the WorkloadsReady phase when no replacement was recorded
	// Ready, for example when the workload timeout expired).
	// +optional
	Total *metav1.Duration `json:"total,omitempty"`
	// Detection runs from lastHeartbeatSeen to Detected: the unhealthy
	// window plus what it took to notice its end.
	// +optional
	Detection *metav1.Duration `json:"detection,omitempty"`
	// Fence runs from Detected to Fenced: the fence provider's work
	// (a power-off, or the wait provider's safe time) and any retries.
	// +optional
	Fence *metav1.Duration `json:"fence,omitempty"`
	// Release runs from Fenced to Released: the release strategy's calls.
	// +optional
	Release *metav1.Duration `json:"release,omitempty"`
	// Schedule runs from Released to the last replacement seen bound to a
	// node (the owner recreating the pod and the scheduler placing it).
	// +optional
	Schedule *metav1.Duration `json:"schedule,omitempty"`
	// Start runs from the last replacement scheduled to the last one
	// Ready: attaching its volumes, starting it, its readiness probe.
	// +optional
	Start *metav1.Duration `json:"start,omitempty"`
}

// TakeoverStatus is the persisted state of the incident.
type TakeoverStatus struct {
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Reason is a one-word cause of the current phase.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says the same in words.
	// +optional
	Message string `json:"message,omitempty"`
	// Timeline holds the phase changes, oldest first. A change to a retry
	// phase (Fencing, Failed, Paused) that repeats one of the last two
	// entries counts on that entry; beyond 32 entries the oldest repeated
	// steps are dropped (see TimelineDropped), never those the record
	// depends on (the first entry, the first of each phase, the last
	// Detected and the Fenced, Released and WorkloadsReady after it).
	// +optional
	Timeline []PhaseTransition `json:"timeline,omitempty"`
	// TimelineDropped counts the timeline entries dropped by its cap.
	// +optional
	TimelineDropped int32 `json:"timelineDropped,omitempty"`
	// Heartbeat is the node's last heartbeat when the incident was detected
	// (its Lease renewTime and Ready lastHeartbeatTime, as the kubelet wrote
	// them). Right before any destructive call the live Node and Lease are
	// compared with it: a different value means the node is alive, and
	// nothing is released.
	// +optional
	Heartbeat string `json:"heartbeat,omitempty"`
	// BootID is the node's bootID when the incident began.
	// +optional
	BootID string `json:"bootID,omitempty"`
	// RebootRequired is true when the node was fenced by cutting its power or
	// by its own watchdog: its return must show a new bootID before liberator
	// removes its taint.
	// +optional
	RebootRequired bool `json:"rebootRequired,omitempty"`
	// FenceAttempts counts fence calls made for this incident.
	// +optional
	FenceAttempts int32 `json:"fenceAttempts,omitempty"`
	// FenceOutput is the fence provider's last output, secrets redacted.
	// +optional
	FenceOutput string `json:"fenceOutput,omitempty"`
	// NextRetryTime is when a failed step is tried again.
	// +optional
	NextRetryTime *metav1.Time `json:"nextRetryTime,omitempty"`
	// ReleaseStarted is when the release step was about to make its first
	// destructive call. From then on the incident rolls forward: it never
	// closes as "nothing was released".
	// +optional
	ReleaseStarted *metav1.MicroTime `json:"releaseStarted,omitempty"`
	// LastHeartbeatSeen is when, on the controller's own clock, the node's
	// heartbeat (its Lease renewTime, or its Ready condition for a node
	// without a Lease) was last seen to change before detection: the start
	// of the unhealthy window that expired. It is written with Detected.
	// +optional
	LastHeartbeatSeen *metav1.MicroTime `json:"lastHeartbeatSeen,omitempty"`
	// Downtime breaks the takeover's duration into its parts; it is filled
	// when the phase WorkloadsReady is entered, and kept.
	// +optional
	Downtime *Downtime `json:"downtime,omitempty"`
	// MovedPods lists the pods released from the node and their replacements.
	// +optional
	MovedPods []MovedPod `json:"movedPods,omitempty"`
	// PodsMoved is the number of pods released from the node (the length
	// of movedPods), for kubectl's Pods column.
	// +optional
	PodsMoved int32 `json:"podsMoved,omitempty"`
	// ReleasedVolumeAttachments lists the VolumeAttachments deleted.
	// +optional
	ReleasedVolumeAttachments []string `json:"releasedVolumeAttachments,omitempty"`
	// Conditions summarize the incident for people and tools
	// (kubectl wait --for=condition=Succeeded):
	//   - Progressing is True while the takeover moves on (Detected,
	//     Fencing, Fenced, Released); False once the workloads are back or
	//     closed, or while it is held (Failed, Paused).
	//   - Succeeded is True once WorkloadsReady was entered with every
	//     replacement Ready (reason WorkloadsReady), and stays True; False
	//     when workloadTimeout passed first (reason WorkloadTimeout) or the
	//     incident closed before that (nothing was released); Unknown
	//     (reason InProgress) until then.
	//   - Degraded is True while a step failed or a guard holds (phase
	//     Failed or Paused, or a release step being retried), with the
	//     reason and message of the status, and after a WorkloadTimeout
	//     until the incident closes.
	//   - StormGuard is True while the storm guard holds remediation.
	// The reason of Progressing and Degraded is the status' reason.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Takeover records one node failure and its handling. It is cluster-scoped;
// its name is the node's name and a detection timestamp.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tko,categories=liberator
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.fenceProvider`
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.strategy`,priority=1
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.podsMoved`
// +kubebuilder:printcolumn:name="Downtime",type=string,JSONPath=`.status.downtime.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Takeover struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TakeoverSpec   `json:"spec,omitempty"`
	Status TakeoverStatus `json:"status,omitempty"`
}

// TakeoverList is a list of Takeovers.
//
// +kubebuilder:object:root=true
type TakeoverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Takeover `json:"items"`
}

// PhaseTime returns when the takeover first entered phase p, or nil.
func (t *Takeover) PhaseTime(p Phase) *metav1.MicroTime {
	for i := range t.Status.Timeline {
		if t.Status.Timeline[i].Phase == p {
			return &t.Status.Timeline[i].Time
		}
	}
	return nil
}

// DetectedHeartbeat is the heartbeat fingerprint recorded at detection: the
// status' (the spec's until the first status write, which a crash may
// prevent; an incident started over records the new one in the status).
func (t *Takeover) DetectedHeartbeat() string {
	if t.Status.Heartbeat != "" { // written with the first phase; replaced when an incident starts over
		return t.Status.Heartbeat
	}
	return t.Spec.Heartbeat
}

// ConfirmedOffFor returns the operator's confirmation that the node is
// off when it was made for this incident as it stands (its heartbeat
// fingerprint is the one recorded at detection), or nil: a confirmation
// made before the incident started over is void.
func (t *Takeover) ConfirmedOffFor() *ConfirmedOff {
	c := t.Spec.ConfirmedOff
	if c == nil || c.By == "" || c.Heartbeat == "" || c.Heartbeat != t.DetectedHeartbeat() {
		return nil
	}
	return c
}

// DetectedBootID is the node's bootID recorded at detection.
func (t *Takeover) DetectedBootID() string {
	if t.Spec.BootID != "" {
		return t.Spec.BootID
	}
	return t.Status.BootID
}
