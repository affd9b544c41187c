package decide

import (
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// AgentFence is what the controller knows of one node's liberator agent
// when it asks whether the agent has fenced its node (docs/design.md, "When
// the controller may release"). Every time is a reading of the
// controller's own monotonic clock.
type AgentFence struct {
	// Published is the agent's Lease as the controller last saw it.
	Published agentlease.Published
	// LastRenewal is L: when the controller last saw the Lease's renewTime
	// change, or first saw the Lease. Zero: the Lease was never seen.
	LastRenewal time.Time
	// QuorumNotFresh is Q: the last instant at which the controller saw at
	// least the node's quorum of agents (the node's own counted) not fresh.
	QuorumNotFresh time.Time
	// AckSeen is when the controller first saw the agent acknowledge the
	// fence request of this incident; zero when it has not.
	AckSeen time.Time
	// Margin and MaxIsolation are the class's selfFence settings.
	Margin, MaxIsolation time.Duration
}

// AgentVerdict is whether the agent has fenced its node.
type AgentVerdict struct {
	// Done is true once the node is proven reset; otherwise RetryAfter is
	// how long until it will be, as things stand.
	Done       bool
	RetryAfter time.Duration
	// Acked is true when the acknowledgement gives the earliest instant
	// (the isolation bound otherwise): a renewal seen live does not void it.
	Acked bool
	// Message says which rule decided, with its figures.
	Message string
}

// AgentFenceable returns why an agent that published p is no fence for a
// class with this margin and maxIsolation, or nil when it is one: it must
// hold its watchdog (armed), publish usable bounds, an isolation bound
// plus margin within maxIsolation, and a renew interval short enough that
// a healthy agent counts as fresh: its freshness runs from the renewal
// before its last, so two renew intervals must fit in half its API
// timeout less the margin.
func AgentFenceable(p agentlease.Published, margin, maxIsolation time.Duration) error {
	if !p.Armed {
		return fmt.Errorf("agent on %s is not armed: it holds no watchdog that would reset the node", p.Node)
	}
	if err := p.Bounds.Validate(); err != nil {
		return fmt.Errorf("agent on %s publishes unusable bounds: %w", p.Node, err)
	}
	if iso := p.Isolation(); iso+margin > maxIsolation {
		return fmt.Errorf("agent on %s publishes isolation %s + margin %s, above the class's maxIsolation %s", p.Node, iso, margin, maxIsolation)
	}
	if fresh := p.APITimeout/2 - margin; fresh <= 2*p.RenewInterval {
		return fmt.Errorf("agent on %s could never count as fresh: half its API timeout %s less the margin %s is %s, not above two renew intervals %s (a renewal counts once the next confirms it)",
			p.Node, p.APITimeout/2, margin, fresh, 2*p.RenewInterval)
	}
	return nil
}

// AgentFenced decides, at now, whether the node's agent has fenced it: at
// the earlier of ackSeen + watchdogTimeout + margin (acknowledged) and
// max(L, Q) + isolation + margin. The caller must still re-read the agent
// Lease live before it acts on Done: a renewal since L voids the isolation
// bound (not the acknowledgement). An error means the agent is no fence at
// all (AgentFenceable), and says why.
func AgentFenced(in AgentFence, now time.Time) (AgentVerdict, error) {
	p := in.Published
	if in.LastRenewal.IsZero() {
		return AgentVerdict{}, fmt.Errorf("the controller has not seen the agent Lease of %s (%s): is the agent running there?", p.Node, agentlease.LeaseName(p.Node))
	}
	if err := AgentFenceable(p, in.Margin, in.MaxIsolation); err != nil {
		return AgentVerdict{}, err
	}
	from, fromQ := in.LastRenewal, in.QuorumNotFresh.After(in.LastRenewal)
	if fromQ {
		from = in.QuorumNotFresh
	}
	doneAt := from.Add(p.Isolation() + in.Margin)
	acked := !in.AckSeen.IsZero() && !in.AckSeen.Add(p.WatchdogTimeout+in.Margin).After(doneAt)
	if acked {
		doneAt = in.AckSeen.Add(p.WatchdogTimeout + in.Margin)
	}
	ago := func(t time.Time) time.Duration { return now.Sub(t).Round(100 * time.Millisecond) }
	left := doneAt.Sub(now)
	switch {
	case acked && left > 0:
		return AgentVerdict{RetryAfter: left, Acked: true, Message: fmt.Sprintf("waiting %s: the agent acknowledged the fence request %s ago; watchdog timeout %s + margin %s",
			left.Round(100*time.Millisecond), ago(in.AckSeen), p.WatchdogTimeout, in.Margin)}, nil
	case acked:
		return AgentVerdict{Done: true, Acked: true, Message: fmt.Sprintf("agent acknowledged the fence request %s ago; watchdog timeout %s + margin %s passed",
			ago(in.AckSeen), p.WatchdogTimeout, in.Margin)}, nil
	case left > 0 && fromQ:
		return AgentVerdict{RetryAfter: left, Message: fmt.Sprintf("waiting %s: isolation bound %s + margin %s from when a quorum of agents was last seen not fresh, %s ago",
			left.Round(100*time.Millisecond), p.Isolation(), in.Margin, ago(from))}, nil
	case left > 0:
		return AgentVerdict{RetryAfter: left, Message: fmt.Sprintf("waiting %s: isolation bound %s + margin %s from the last renewal seen %s ago",
			left.Round(100*time.Millisecond), p.Isolation(), in.Margin, ago(from))}, nil
	}
	q := ""
	if fromQ {
		q = fmt.Sprintf(", a quorum of agents last seen not fresh %s ago", ago(from))
	}
	return AgentVerdict{Done: true, Message: fmt.Sprintf("isolation bound passed: last renewal seen %s ago%s; bound %s + margin %s",
		ago(in.LastRenewal), q, p.Isolation(), in.Margin)}, nil
}
