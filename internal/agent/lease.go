package agent

import (
	"context"
	"math"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// getLease reads the agent Lease; a missing one is returned new, to be
// created.
func (a *Agent) getLease(ctx context.Context) (*coordinationv1.Lease, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.callTimeout())
	defer cancel()
	name := agentlease.LeaseName(a.cfg.Node)
	l, err := a.kube.CoordinationV1().Leases(a.cfg.Namespace).Get(cctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.cfg.Namespace}}, true, nil
	}
	if err != nil {
		a.m.APIFailures.WithLabelValues("get").Inc()
		return nil, false, err
	}
	return l, false, nil
}

// writeLease writes p onto l with renewTime t0 (the start of the attempt)
// and creates or updates it. A conflict fails the attempt; the next one
// reads again.
func (a *Agent) writeLease(ctx context.Context, l *coordinationv1.Lease, create bool, t0 time.Time, p agentlease.Published) error {
	p.Apply(l)
	holder := a.cfg.Node
	secs := int32(math.Ceil(a.bounds.APITimeout.Seconds()))
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &holder, &secs
	l.Spec.RenewTime = &metav1.MicroTime{Time: t0}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.callTimeout())
	defer cancel()
	leases := a.kube.CoordinationV1().Leases(a.cfg.Namespace)
	var err error
	var got *coordinationv1.Lease
	if create {
		if got, err = leases.Create(cctx, l, metav1.CreateOptions{}); err != nil {
			a.m.APIFailures.WithLabelValues("create").Inc()
		}
	} else if got, err = leases.Update(cctx, l, metav1.UpdateOptions{}); err != nil {
		a.m.APIFailures.WithLabelValues("update").Inc()
	}
	if err == nil {
		// The API server answered: this renewal landed, and the next one
		// says so (agentlease.Renewed).
		a.renewed = agentlease.Fingerprint(got)
	}
	return err
}

// published is what the agent writes on its Lease, given the Lease it read.
func (a *Agent) published(l *coordinationv1.Lease) agentlease.Published {
	return agentlease.Published{Node: a.cfg.Node, Armed: a.wd != nil, Bounds: a.bounds,
		Quorum: agentlease.QuorumOf(a.members()), PeerAddress: a.cfg.PeerAddress, BootID: a.bootID,
		FenceAck: a.ackFor(l), Renewed: a.renewed}
}

// ackFor is the fence-ack to write: any request, once the agent has
// stopped feeding; else an acknowledgement already on the Lease for the
// current request (written in an earlier boot, which the reset ended).
func (a *Agent) ackFor(l *coordinationv1.Lease) string {
	req := l.Annotations[agentlease.FenceRequest]
	switch {
	case req == "":
		return ""
	case a.fenced, l.Annotations[agentlease.FenceAck] == req:
		return req
	}
	return ""
}

// pendingRequest is the fence request on l that no agent has acknowledged.
func pendingRequest(l *coordinationv1.Lease) string {
	if req := l.Annotations[agentlease.FenceRequest]; req != "" && l.Annotations[agentlease.FenceAck] != req {
		return req
	}
	return ""
}

// firstRenewal is a starting agent's renewal, before it holds the
// watchdog:
//   - a pending fence request: arm the watchdog (its last feed), never feed
//     it, then acknowledge;
//   - a request acknowledged in this boot (by an earlier process): the
//     watchdog that process left running resets the node; do nothing;
//   - otherwise renew with armed=false, then arm: from then on the agent
//     counts from this renewal.
func (a *Agent) firstRenewal(ctx context.Context) error {
	t0 := a.clock.Now()
	l, create, err := a.getLease(ctx)
	if err != nil {
		a.renewFailed(err)
		return nil
	}
	if req := pendingRequest(l); req != "" {
		if err := a.arm(true); err != nil {
			return err
		}
		a.fence("request", "fence requested by "+req+" before this agent armed")
		a.renewOnto(ctx, l, create, t0)
		return nil
	}
	if req := l.Annotations[agentlease.FenceRequest]; req != "" && l.Annotations[agentlease.BootID] == a.bootID {
		if !a.idleLogged {
			a.log.Error(nil, "the fence request was acknowledged in this boot: not arming the watchdog until the request is withdrawn", "request", req)
			a.idleLogged = true
		}
		return nil
	}
	if !a.renewOnto(ctx, l, create, t0) {
		return nil
	}
	if err := a.arm(false); err != nil {
		return err
	}
	a.lastAttempt = time.Time{}
	a.feed()
	a.setReady(true)
	return nil
}

// renew is the loop's renewal: read, stop feeding first if a fence
// request is pending, then write.
func (a *Agent) renew(ctx context.Context) {
	// One attempt, read and write together, within one call timeout.
	ctx, cancel := context.WithTimeout(ctx, a.cfg.callTimeout())
	defer cancel()
	t0 := a.clock.Now()
	a.lastAttempt = t0
	l, create, err := a.getLease(ctx)
	if err != nil {
		a.renewFailed(err)
		return
	}
	if req := pendingRequest(l); req != "" {
		a.fence("request", "fence requested by "+req)
	}
	a.renewOnto(ctx, l, create, t0)
}

// renewOnto writes the agent's state onto l, read at t0, and records the
// outcome.
func (a *Agent) renewOnto(ctx context.Context, l *coordinationv1.Lease, create bool, t0 time.Time) bool {
	p := a.published(l)
	if err := a.writeLease(ctx, l, create, t0, p); err != nil {
		a.renewFailed(err)
		return false
	}
	a.lastSuccess = t0
	a.recordSuccess(a.clock.Now())
	a.m.Renewals.Inc()
	if a.renewFailing {
		a.log.Info("renewed the agent Lease again", "armed", p.Armed)
		a.renewFailing = false
	}
	if p.FenceAck != "" && p.FenceAck != a.ackLogged && a.fenced {
		a.log.Info("acknowledged the fence request", "request", p.FenceAck)
		a.ackLogged = p.FenceAck
	}
	return true
}

func (a *Agent) renewFailed(err error) {
	if apierrors.IsConflict(err) {
		a.log.V(1).Info("the agent Lease changed under the renewal; retrying", "err", err.Error())
	} else if !a.renewFailing {
		a.log.Info("cannot renew the agent Lease", "err", err.Error())
	}
	a.renewFailing = true
}

// renewDue says whether the loop renews in the iteration that starts at
// now: every iteration while renewals fail, else every renew interval
// (with half a check interval of tolerance for the loop's jitter).
func (a *Agent) renewDue(now time.Time) bool {
	return a.renewFailing || a.lastAttempt.IsZero() ||
		now.Sub(a.lastAttempt) >= a.bounds.RenewInterval-a.bounds.CheckInterval/2
}
