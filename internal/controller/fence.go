package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fence proves the node off through its class's provider. Before the first
// call of an attempt, and before this process's first call of an attempt
// another leader began, it re-reads the Node and Lease live
// (docs/design.md, rule 2) and takes a concurrency slot.
func (c *Controller) fence(ctx context.Context, t *v1alpha1.Takeover, node *corev1.Node) (time.Duration, error) {
	fc := incidentClass(c.confIn(ctx), t, node)
	if fc == nil {
		return 0, errors.New("no fence class for node") // decide never fences such a node
	}
	if t.Status.Phase != v1alpha1.PhaseFencing || !c.slots.holds(t.Spec.NodeName) {
		if after, stop, err := c.startFencing(ctx, t, fc); stop || err != nil {
			return after, err
		}
	}
	res, err := c.callFencer(ctx, t, t.Spec.NodeName, fc)
	if err != nil {
		return c.fenceFailed(ctx, t, fc, err)
	}
	if !res.Done {
		return res.RetryAfter, nil
	}
	return soon, c.fenced(ctx, t, fc, res)
}

// startFencing begins a fence attempt: a live read of the pause (held
// while liberator is paused), a live re-read that stops it on a heartbeat
// (decide.BeforeFence), a concurrency slot (maxConcurrent, held exactly
// across workers), then phase Fencing. stop is true when the attempt must
// not go on now.
func (c *Controller) startFencing(ctx context.Context, t *v1alpha1.Takeover, fc *config.FenceClass) (time.Duration, bool, error) {
	if after, stop, err := c.holdIfPausedLive(ctx, t); stop {
		return after, true, err
	}
	_, check, err := c.liveCheck(ctx, t)
	if err != nil {
		return 0, true, err
	}
	switch d := decide.BeforeFence(incident(t), check); d.Action {
	case decide.Fence:
	case decide.Redetect:
		return soon, true, c.redetect(ctx, t, d, check)
	default:
		after, err := c.abort(ctx, t, d)
		return after, true, err
	}
	cfg := c.confIn(ctx)
	if !c.slots.take(t.Spec.NodeName, cfg.MaxConcurrent, c.nodesInPhases(v1alpha1.PhaseFencing, v1alpha1.PhaseFenced)) {
		after, err := c.pause(ctx, t, decide.Decision{Action: decide.Pause, Reason: decide.ReasonMaxConcurrent,
			Message: fmt.Sprintf("other takeovers hold every slot (maxConcurrent %d)", cfg.MaxConcurrent)})
		return after, true, err
	}
	if t.Status.Phase == v1alpha1.PhaseFencing {
		return 0, false, nil // resuming another leader's attempt: checked, slot taken
	}
	t.Status.FenceAttempts++
	t.Status.NextRetryTime = nil
	err = c.transition(ctx, t, step{phase: v1alpha1.PhaseFencing, reason: decide.ReasonFenceStarted,
		message: fmt.Sprintf("fencing with provider %s (class %s), attempt %d", fc.Provider, fc.Name, t.Status.FenceAttempts),
		event:   decide.EventFencing, eventMessage: fmt.Sprintf("fencing with provider %s (class %s)", fc.Provider, fc.Name)})
	if err != nil {
		c.slots.give(t.Spec.NodeName)
		return 0, true, err
	}
	return 0, false, nil
}

// callFencer runs the class's provider once, bounded by its timeout, and
// counts the outcome.
func (c *Controller) callFencer(ctx context.Context, t *v1alpha1.Takeover, node string, fc *config.FenceClass) (fence.Result, error) {
	f, err := c.fencer(*fc)
	if err != nil {
		return fence.Result{}, err
	}
	// The wait provider's safe time runs on this process's monotonic clock,
	// from when it first saw the incident: a clock step, or a new leader
	// whose wall clock runs ahead, can make it longer, never shorter.
	detected := c.firstSeen(t)
	fctx, cancel := context.WithTimeout(ctx, fc.Timeout.Duration)
	defer cancel()
	start := c.clock.Now()
	res, err := f.Fence(fctx, fence.Target{Node: node, Class: *fc, Takeover: t.Name, DetectedAt: detected, Now: start})
	c.m.FenceSeconds.WithLabelValues(fc.Provider).Observe(c.clock.Since(start).Seconds())
	switch {
	case err != nil:
		c.m.FenceCalls.WithLabelValues(fc.Provider, "error").Inc()
	case !res.Done:
		c.m.FenceCalls.WithLabelValues(fc.Provider, "pending").Inc()
	default:
		c.m.FenceCalls.WithLabelValues(fc.Provider, "success").Inc()
	}
	return res, err
}

// fenced records a successful fence (or, for provider none, an accepted
// unsafe one).
func (c *Controller) fenced(ctx context.Context, t *v1alpha1.Takeover, fc *config.FenceClass, res fence.Result) error {
	t.Status.FenceOutput = res.Output
	t.Status.RebootRequired = res.PowerOff || fc.Provider != config.ProviderNone
	s := step{phase: v1alpha1.PhaseFenced, reason: decide.ReasonFenced,
		message: fmt.Sprintf("fenced by provider %s (class %s): %s", fc.Provider, fc.Name, res.Output),
		log:     "node fenced", kv: []any{"provider", fc.Provider, "unsafe", res.Unsafe}, event: decide.ReasonFenced}
	if res.Unsafe {
		s.reason, s.event, s.warning = decide.ReasonFencedUnsafe, decide.ReasonFencedUnsafe, true
		s.message = fmt.Sprintf("NOT fenced: class %s uses provider none, so the node was not proven off; the policy accepts this for its class", fc.Name)
	}
	return c.transition(ctx, t, s)
}

func (c *Controller) fenceFailed(ctx context.Context, t *v1alpha1.Takeover, fc *config.FenceClass, ferr error) (time.Duration, error) {
	backoff := retryBackoff(c.confIn(ctx), int(t.Status.FenceAttempts))
	next := metav1.NewTime(c.clock.Now().Add(backoff))
	t.Status.NextRetryTime = &next
	msg := fmt.Sprintf("fencing with provider %s (class %s) failed: %v; nothing is released; retry in %s", fc.Provider, fc.Name, ferr, backoff)
	if err := c.transition(ctx, t, step{phase: v1alpha1.PhaseFailed, reason: decide.ReasonFenceFailed, message: msg,
		log: "fencing failed", kv: []any{"error", ferr.Error(), "retryIn", backoff}, event: decide.ReasonFenceFailed, warning: true}); err != nil {
		return 0, err
	}
	if n := c.cachedNode(t.Spec.NodeName); n != nil {
		// The fence path is broken now: say so at once, not at the next check.
		c.publishFenceReady(ctx, n, fenceVerdict{false, ReasonFenceCheckFailed, msg})
	}
	return backoff, nil
}

func retryBackoff(cfg *settings, attempts int) time.Duration {
	d := cfg.Retry.InitialBackoff.Duration
	for i := 1; i < attempts && d < cfg.Retry.MaxBackoff.Duration; i++ {
		d *= 2
	}
	return min(d, cfg.Retry.MaxBackoff.Duration)
}
