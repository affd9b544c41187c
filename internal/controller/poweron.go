package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
)

// PoweredOnCondition is the Takeover status condition that records the
// power-on of a fenced node after its takeover (powerOnAfterTakeover).
const PoweredOnCondition = decide.ReasonPoweredOn

// powerOnAfterTakeover powers a fenced node back on once its workloads are
// Ready elsewhere, when its fence class says powerOnAfterTakeover, so that
// it rejoins by itself (its new bootID then lets the incident recover).
//
// Call it once the Takeover has reached WorkloadsReady. It does nothing and
// returns false when the class does not ask for it, when the node's power
// was not cut by liberator, when the provider cannot power nodes on, or when
// the Takeover's PoweredOn condition is already True. Otherwise it runs the
// provider's power-on and records the outcome on t (condition PoweredOn,
// status written), in an event and in liberator_power_on_total. A failure is
// returned after being recorded; the node then stays off, which is safe,
// until someone powers it on.
func (c *Controller) powerOnAfterTakeover(ctx context.Context, t *v1alpha1.Takeover) (bool, error) {
	if t.PhaseTime(v1alpha1.PhaseWorkloadsReady) == nil || t.PhaseTime(v1alpha1.PhaseReleased) == nil || !t.Status.RebootRequired {
		return false, nil
	}
	if meta.IsStatusConditionTrue(t.Status.Conditions, PoweredOnCondition) {
		return false, nil
	}
	name := t.Spec.NodeName
	var labels map[string]string
	if n := c.cachedNode(name); n != nil {
		labels = n.Labels
	}
	fc := c.confIn(ctx).ClassFor(name, labels)
	if fc == nil || !fc.PowerOnAfterTakeover || fc.Provider != t.Spec.FenceProvider {
		return false, nil
	}
	f, err := c.fencer(*fc)
	if err != nil {
		return false, c.powerOnFailed(ctx, t, err)
	}
	p, ok := f.(fence.PowerOner)
	if !ok {
		return false, nil
	}
	pctx, cancel := context.WithTimeout(ctx, fc.Timeout.Duration)
	defer cancel()
	if err := p.PowerOn(pctx, fence.Target{Node: name, Class: *fc, Now: c.clock.Now()}); err != nil {
		return false, c.powerOnFailed(ctx, t, err)
	}
	c.m.PowerOns.WithLabelValues("success").Inc()
	msg := fmt.Sprintf("powered on by provider %s (class %s) after its workloads were Ready elsewhere (powerOnAfterTakeover); its taint stays until it returns with a new bootID", fc.Provider, fc.Name)
	meta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{Type: PoweredOnCondition, Status: metav1.ConditionTrue,
		Reason: decide.ReasonPoweredOn, Message: msg, LastTransitionTime: metav1.NewTime(c.clock.Now())})
	if err := c.writeStatus(ctx, t); err != nil {
		return true, err
	}
	c.log.Info("fenced node powered on after takeover", "node", name, "takeover", t.Name, "provider", fc.Provider)
	c.incidentEvent(t, corev1.EventTypeNormal, decide.ReasonPoweredOn, msg)
	return true, nil
}

func (c *Controller) powerOnFailed(ctx context.Context, t *v1alpha1.Takeover, perr error) error {
	c.m.PowerOns.WithLabelValues("error").Inc()
	msg := fmt.Sprintf("power-on after takeover failed: %v; the node stays off until it is powered on", perr)
	meta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{Type: PoweredOnCondition, Status: metav1.ConditionFalse,
		Reason: decide.ReasonPowerOnFailed, Message: msg, LastTransitionTime: metav1.NewTime(c.clock.Now())})
	werr := c.writeStatus(ctx, t)
	c.log.Info("power-on after takeover failed", "node", t.Spec.NodeName, "takeover", t.Name, "error", perr.Error())
	c.incidentEvent(t, corev1.EventTypeWarning, decide.ReasonPowerOnFailed, msg)
	return errors.Join(fmt.Errorf("power on node %s: %w", t.Spec.NodeName, perr), werr)
}
