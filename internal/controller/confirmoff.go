package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
)

// confirmOff takes an operator's statement that the node is off
// (spec.confirmedOff, written by liberator confirm-off) as its fence. The
// statement is checked as a fence is before its first call
// (decide.BeforeConfirmOff on a live re-read of the Node and Lease): a
// heartbeat seen since detection, or a re-registered Node, refuses it and
// closes the incident, nothing released; decide has already held it while
// a guard holds or while this controller has not itself seen the node
// silent for a whole window. Accepted, the incident is Fenced with reason
// ConfirmedOff and goes on to the release as any fenced one, and the node
// must come back with a new boot, as after a power-off.
func (c *Controller) confirmOff(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	co := t.ConfirmedOffFor()
	if co == nil {
		return soon, nil // changed since decided: decide again
	}
	_, check, err := c.liveCheck(ctx, t)
	if err != nil {
		return 0, err
	}
	switch d := decide.BeforeConfirmOff(incident(t), check); d.Action {
	case decide.ConfirmOff:
	case decide.Redetect:
		if err := c.redetect(ctx, t, d, check); err != nil {
			return 0, err
		}
		c.confirmOffRefused(t, co, d.Message)
		return soon, nil
	default:
		return c.abort(ctx, t, d)
	}
	at := co.Time.UTC().Format(time.RFC3339)
	t.Status.RebootRequired = true
	t.Status.NextRetryTime = nil
	t.Status.FenceOutput = ""
	msg := fmt.Sprintf("confirmed off by %s at %s: %s", co.By, at, co.Reason)
	err = c.transition(ctx, t, step{phase: v1alpha1.PhaseFenced, reason: decide.ReasonConfirmedOff, message: msg,
		log: "node confirmed off by an operator", kv: []any{"by", co.By, "at", at}, event: decide.ReasonConfirmedOff})
	if err != nil {
		return 0, err
	}
	return soon, nil
}

// pendingConfirmOff returns the operator's statement on t that was not
// taken (yet): made for this incident as it stands, which is not fenced.
func pendingConfirmOff(t *v1alpha1.Takeover) *v1alpha1.ConfirmedOff {
	if fencedSinceDetection(t) {
		return nil
	}
	return t.ConfirmedOffFor()
}

// refusedMessage is msg, saying first that co was refused, unless it does.
func refusedMessage(co *v1alpha1.ConfirmedOff, msg string) string {
	prefix := "confirm-off by " + co.By + " refused: the node's heartbeat is live"
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + "; " + msg
}

// confirmOffRefused records a Warning event on the node and the Takeover:
// an operator's statement that the node is off was refused.
func (c *Controller) confirmOffRefused(t *v1alpha1.Takeover, co *v1alpha1.ConfirmedOff, msg string) {
	c.incidentEvent(t, corev1.EventTypeWarning, decide.EventConfirmOffRefused, refusedMessage(co, msg))
	c.log.Info("confirm-off refused: the node's heartbeat is live", "node", t.Spec.NodeName, "takeover", t.Name, "by", co.By)
}
