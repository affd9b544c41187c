package controller

import (
	"context"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/kubeutil"
	"github.com/liberator-dev/liberator/internal/release"
	corev1 "k8s.io/api/core/v1"
)

// reconcile looks at one node: read the caches, decide, act. It returns when
// to look again, or an error to retry with backoff.
func (c *Controller) reconcile(ctx context.Context, name string) (time.Duration, error) {
	cfg := c.confIn(ctx)
	node := c.cachedNode(name)
	tk := c.openTakeover(name)
	if tk == nil {
		c.slots.give(name) // its Takeover was deleted mid-fence, say
	}
	d := decide.Decide(c.input(cfg, name, node, tk, false))
	if tk != nil && !noop(d, tk) {
		// An incident is to move on: act on the API server's copy, never
		// on a cache that may lag behind our own last write. Decisions that
		// change nothing are taken from the cache, so a storm of paused
		// incidents costs no reads.
		live, err := c.getLive(ctx, tk.Name)
		if err != nil {
			return 0, err
		}
		if live == nil || live.Status.Phase.Closed() {
			live = nil
		}
		// The guards use a count taken now for the decisions they hold.
		fresh := d.Action == decide.Open || d.Action == decide.Fence || d.Action == decide.Release
		d = decide.Decide(c.input(cfg, name, node, live, fresh))
		tk = live
	}
	c.m.Decisions.WithLabelValues(string(d.Action)).Inc()
	log := c.log.WithValues("node", name, "action", d.Action, "reason", d.Reason)
	if d.Action != decide.None {
		log.V(2).Info("decision", "message", d.Message)
	}
	switch d.Action {
	case decide.None:
		if tk != nil && recorded(d) && tk.Status.Reason != d.Reason {
			return d.RequeueAfter, c.await(ctx, tk, d)
		}
		return d.RequeueAfter, nil
	case decide.Open:
		return c.open(ctx, node, d)
	case decide.Pause:
		return c.pause(ctx, tk, d)
	case decide.ReportDryRun:
		return c.reportDryRun(ctx, tk, node)
	case decide.Fence:
		return c.fence(ctx, tk, node)
	case decide.ConfirmOff:
		return c.confirmOff(ctx, tk)
	case decide.Release:
		return c.release(ctx, tk)
	case decide.TrackWorkloads:
		return c.track(ctx, tk)
	case decide.Recover:
		return c.recover(ctx, tk)
	case decide.Abort:
		if d.Reason == decide.ReasonHeartbeatResumed {
			return c.confirmResumed(ctx, tk)
		}
		return c.abort(ctx, tk, d)
	}
	return 0, nil
}

// noop reports whether carrying d out on t would change nothing.
func noop(d decide.Decision, t *v1alpha1.Takeover) bool {
	if d.Action == decide.None {
		return !recorded(d) || t.Status.Reason == d.Reason
	}
	return d.Action == decide.Pause && t.Status.Phase == v1alpha1.PhasePaused && t.Status.Reason == d.Reason
}

// heartbeatChanged reports whether the cached Node and Lease show a
// heartbeat other than the one recorded when tk's incident was detected.
// Only a seen change counts: a new leader whose windows start afresh has
// seen none.
func (c *Controller) heartbeatChanged(node *corev1.Node, tk *v1alpha1.Takeover) bool {
	want := tk.DetectedHeartbeat()
	if node == nil || want == "" {
		return false
	}
	return release.Heartbeat(node, c.cachedLease(node.Name)) != want
}

// input gathers what decide needs for one node. With fresh, the guards use
// a count taken now rather than the last tick's (for decisions that act:
// a storm that began since the tick must hold them).
func (c *Controller) input(cfg *settings, name string, node *corev1.Node, tk *v1alpha1.Takeover, fresh bool) decide.Input {
	window := cfg.UnhealthyAfter.Duration
	v := c.health.view(name, window)
	n := decide.Node{Name: name, Exists: node != nil}
	if node != nil {
		n.UID, n.BootID = string(node.UID), node.Status.NodeInfo.BootID
		n.Eligible, n.IneligibleReason = eligible(cfg, node)
		n.HasLease, n.LeaseStaleFor = v.hasLease, v.leaseStale
		n.Ready, n.NotReadyFor, n.HealthyFor = v.ready, v.notReadyFor, v.healthyFor
		if !v.hasNode { // seen by the lister before the handler ran
			n.Ready = kubeutil.NodeReady(node)
		}
		if fc := fenceClass(cfg, node); fc != nil {
			n.FenceProvider, n.ReleaseUnproven = fc.Provider, fc.ReleaseUnproven
		}
	}
	if node == nil { // a Lease may outlive its Node
		n.HasLease, n.LeaseStaleFor = v.hasLease, v.leaseStale
	}
	if tk != nil {
		n.HeartbeatChanged = c.heartbeatChanged(node, tk)
		n.FenceProvider, n.ReleaseUnproven = "", false
		if fc := incidentClass(cfg, tk, node); fc != nil {
			n.FenceProvider, n.ReleaseUnproven = fc.Provider, fc.ReleaseUnproven
		}
	}
	t := *c.counts.Load()
	if fresh {
		t, _ = c.count(cfg)
	}
	limit, _ := cfg.MaxUnhealthyOf(t.eligible)
	p := c.pauseNow()
	return decide.Input{
		Now:      c.clock.Now(),
		Node:     n,
		Incident: incident(tk),
		Cluster: decide.Cluster{Eligible: t.eligible, Unhealthy: t.unhealthy, Suspect: t.suspect,
			APIHealthy: c.api.healthy(), Blind: c.health.blind(), Active: c.active(name), Paused: p != nil, PauseNote: noteOf(p)},
		Policy: decide.Policy{
			UnhealthyAfter: window, HealthyDelay: cfg.HealthyDelay.Duration,
			MaxUnhealthy: limit, MaxConcurrent: cfg.MaxConcurrent, MaxAttempts: cfg.Retry.MaxAttempts, DryRun: cfg.DryRun,
		},
	}
}
