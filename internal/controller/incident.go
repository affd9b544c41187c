package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NodeLabel is set on every Takeover to the node's name (when it is a valid
// label value), for kubectl users.
const NodeLabel = "liberator.dev/node"

// soon is the requeue delay after a step that moved an incident on.
const soon = time.Millisecond

// liveOpenTakeover lists the node's Takeovers from the API server and returns
// the open one, so a lagging cache never opens a second incident.
func (c *Controller) liveOpenTakeover(ctx context.Context, node string) (*v1alpha1.Takeover, error) {
	l := &v1alpha1.TakeoverList{}
	err := c.client.List(ctx, l, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.nodeName", node)})
	c.apiResult("listTakeovers", err)
	if err != nil {
		return nil, err
	}
	return v1alpha1.OpenTakeoverOf(l.Items), nil
}

// incident is what decide needs of a Takeover.
func incident(t *v1alpha1.Takeover) *decide.Incident {
	if t == nil {
		return nil
	}
	s := t.Status
	inc := &decide.Incident{
		Phase:          s.Phase,
		NodeUID:        t.Spec.NodeUID,
		Fenced:         fencedSinceDetection(t),
		Released:       t.PhaseTime(v1alpha1.PhaseReleased) != nil,
		RebootRequired: s.RebootRequired,
		BootID:         t.DetectedBootID(),
		ReleaseStarted: s.ReleaseStarted != nil,
		DryRun:         t.Spec.DryRun,
		Reported:       s.Reason == decide.ReasonDryRun,
		FenceAttempts:  int(s.FenceAttempts),
		WorkloadsReady: t.PhaseTime(v1alpha1.PhaseWorkloadsReady) != nil,
		DeleteNode:     t.Spec.Strategy == v1alpha1.StrategyDeleteNode,
	}
	if co := t.ConfirmedOffFor(); co != nil {
		inc.ConfirmedOffBy = co.By
	}
	if s.NextRetryTime != nil {
		inc.NextRetry = s.NextRetryTime.Time
	}
	return inc
}

// takeoverName is the node's name and the detection time, kept within the
// object name limit.
func takeoverName(node string, now time.Time) string {
	suffix := "-" + now.UTC().Format("20060102-150405")
	if max := 253 - len(suffix); len(node) > max {
		node = strings.TrimRight(node[:max], "-.")
	}
	return node + suffix
}

// setPhase moves t to phase and writes the status. A change of phase or
// reason from the status' current ones is recorded on the timeline
// (recordStep: a repeated retry step counts on its entry, and the
// timeline is capped); the messages are bounded. The write carries t's
// resourceVersion, so two writers cannot both succeed.
func (c *Controller) setPhase(ctx context.Context, t *v1alpha1.Takeover, phase v1alpha1.Phase, reason, msg string) error {
	now := metav1.NewTime(c.clock.Now())
	s := &t.Status
	if len(s.Timeline) == 0 || s.Phase != phase || s.Reason != reason {
		recordStep(s, v1alpha1.PhaseTransition{Phase: phase, Time: metav1.NewMicroTime(now.Time), Reason: reason, Message: msg})
		c.observeTransition(t, phase, reason, now.Time)
		if phase == v1alpha1.PhaseWorkloadsReady && s.Downtime == nil {
			s.Downtime = v1alpha1.ComputeDowntime(t)
			c.observeFinished(reason, s.Downtime)
		}
	}
	s.Phase, s.Reason, s.Message = phase, reason, truncate(msg, maxStatusText)
	s.FenceOutput = truncate(s.FenceOutput, maxStatusText)
	storm := metav1.Condition{Type: "StormGuard", Status: metav1.ConditionFalse, Reason: decide.ReasonStormClear, Message: "remediation allowed", LastTransitionTime: now}
	if reason == decide.ReasonStormGuard {
		storm.Status, storm.Reason, storm.Message = metav1.ConditionTrue, decide.ReasonStormGuard, msg
	}
	meta.SetStatusCondition(&s.Conditions, storm)
	setConditions(t, now)
	return c.writeStatus(ctx, t)
}

// step is one phase change: what the Takeover records, the log line, and
// the event on the node and the Takeover.
type step struct {
	phase   v1alpha1.Phase
	reason  string
	message string
	// log is the log line's message; kv adds key/value pairs to it.
	log string
	kv  []any
	// event is the reason of the event on the Node and the Takeover ("" for
	// none), with
	// eventMessage (default: message) and warning for its type.
	event        string
	eventMessage string
	warning      bool
}

// transition records a step: the phase, reason and message on the
// Takeover's status and timeline (written with its resourceVersion), the
// phase metric, a log line and an event on the node and the Takeover, all
// together. Nothing
// is logged or evented when the write fails.
func (c *Controller) transition(ctx context.Context, t *v1alpha1.Takeover, s step) error {
	if err := c.setPhase(ctx, t, s.phase, s.reason, s.message); err != nil {
		return err
	}
	if s.phase != v1alpha1.PhaseFencing && s.phase != v1alpha1.PhaseFenced {
		c.slots.give(t.Spec.NodeName)
	}
	if s.phase.Closed() {
		c.forgetSeen(t)
		c.noteClosed()
	}
	if s.log != "" {
		kv := append([]any{"node", t.Spec.NodeName, "takeover", t.Name, "phase", s.phase, "reason", s.reason, "message", s.message}, s.kv...)
		c.log.Info(s.log, kv...)
	}
	if s.event != "" {
		typ, msg := corev1.EventTypeNormal, s.message
		if s.warning {
			typ = corev1.EventTypeWarning
		}
		if s.eventMessage != "" {
			msg = s.eventMessage
		}
		c.incidentEvent(t, typ, s.event, msg)
	}
	return nil
}

func resultOf(phase v1alpha1.Phase, reason string) string {
	switch {
	case phase == v1alpha1.PhaseFailed:
		return "failed"
	case phase == v1alpha1.PhasePaused:
		return "paused"
	case phase == v1alpha1.PhaseRecovered && reason != decide.ReasonNodeRecovered:
		return "aborted"
	}
	return "success"
}

func (c *Controller) writeStatus(ctx context.Context, t *v1alpha1.Takeover) error {
	t.Status.PodsMoved = int32(len(t.Status.MovedPods))
	err := c.client.Status().Update(ctx, t)
	c.apiResult("updateTakeoverStatus", err)
	if err != nil {
		return fmt.Errorf("update Takeover %s status: %w", t.Name, err)
	}
	return nil
}

// getLive re-reads a Takeover from the API server.
func (c *Controller) getLive(ctx context.Context, name string) (*v1alpha1.Takeover, error) {
	t := &v1alpha1.Takeover{}
	err := c.client.Get(ctx, client.ObjectKey{Name: name}, t)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	c.apiResult("getTakeover", err)
	return t, err
}

// incidentEvent records an event on t's node and on t itself, where
// `kubectl describe node` and `kubectl describe takeover` show it.
func (c *Controller) incidentEvent(t *v1alpha1.Takeover, typ, reason, msg string) {
	uid := types.UID(t.Spec.NodeUID)
	if uid == "" {
		if n := c.cachedNode(t.Spec.NodeName); n != nil {
			uid = n.UID
		}
	}
	c.recorder.Event(nodeRef(t.Spec.NodeName, uid), typ, reason, msg)
	c.recorder.Event(takeoverRef(t), typ, reason, msg)
}

// nodeRef is the event target for a node. `kubectl describe node` lists
// the events whose involvedObject.uid is the Node's UID or its name (the
// kubelet's events): an incident's events carry the UID recorded at
// detection (t.Spec.NodeUID), so they stay with that Node's history even
// if it is deleted and registers again; without a UID the name stands in.
func nodeRef(name string, uid types.UID) *corev1.ObjectReference {
	if uid == "" {
		uid = types.UID(name)
	}
	return &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: name, UID: uid}
}

// takeoverRef is the event target for a Takeover, built here rather than
// by the recorder from its scheme. The Takeover is cluster-scoped: its
// events, like a Node's, are written in the default namespace.
func takeoverRef(t *v1alpha1.Takeover) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Takeover", APIVersion: v1alpha1.GroupVersion.String(), Name: t.Name, UID: t.UID}
}

// fencedSinceDetection reports whether the timeline holds Fenced after its
// last Detected entry (v1alpha1's Takeover.FencedSinceDetection).
func fencedSinceDetection(t *v1alpha1.Takeover) bool { return t.FencedSinceDetection() }
