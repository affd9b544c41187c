package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// iterate is one pass of the loop, the only place that feeds the watchdog:
//  1. renew the Lease when due (a pending fence request stops the feeding
//     before the acknowledgement is written);
//  2. once the last successful renewal is askAfter old, ask the peers;
//     unless they and this agent make a quorum that sees the API down for
//     everyone, or a peer reaches the API and so does a renewal tried at
//     once, stop feeding for good;
//  3. feed, while the last successful renewal is under askAfter old or the
//     peers kept the agent up in this iteration.
//
// Asking two check intervals before the API timeout leaves room for the
// renewal before the round and the one after it (each bounded by one check
// interval): the decision still comes within the API timeout, one check
// interval and the peer timeout of the last success, as the published
// isolation bound says.
func (a *Agent) iterate(ctx context.Context) {
	if a.renewDue(a.clock.Now()) {
		a.renew(ctx)
	}
	stayUp := false
	if !a.fenced && a.clock.Since(a.lastSuccess) >= a.askAfter() {
		stayUp = a.askPeers(ctx)
	}
	now := a.clock.Now()
	age := now.Sub(a.lastSuccess)
	healthy := age < a.askAfter()
	if !a.fenced && (healthy || stayUp) {
		a.feed()
	}
	a.m.RenewalAge.Set(age.Seconds())
	if healthy && now.Sub(a.lastMembers) >= a.membershipEvery(now) && a.refreshing.CompareAndSwap(false, true) {
		// In the background: the loop's timing argument leaves no room
		// for a list call.
		a.lastMembers = now
		go func() {
			defer a.refreshing.Store(false)
			a.refreshMembers(ctx)
		}()
	}
	a.markIteration()
}

// askAfter is how old the last successful renewal is when the agent asks
// its peers: the API timeout less two check intervals.
func (a *Agent) askAfter() time.Duration {
	return a.bounds.APITimeout - 2*a.bounds.CheckInterval
}

// askPeers asks every known peer at once and decides (agentlease.StayUp).
// When a peer reaches the API, the API may just have come back after an
// outage for everyone: one renewal is tried at once, and only if it fails
// too is this node the one cut off. On a decision to stay down it fences.
func (a *Agent) askPeers(ctx context.Context) bool {
	a.memMu.Lock()
	peers, members := a.peers, a.maxMembers
	a.memMu.Unlock()
	answers, err := a.asker.Ask(ctx, peers)
	quorum := agentlease.QuorumOf(members)
	up, reason := agentlease.StayUp(quorum, answers)
	if err != nil {
		up, reason = false, fmt.Sprintf("cannot ask the peers: %v", err)
	}
	if !up && err == nil && peerReaches(answers) {
		a.renew(ctx)
		if a.fenced || a.clock.Since(a.lastSuccess) < a.askAfter() {
			a.m.PeerRounds.WithLabelValues("api_back").Inc()
			a.log.Info("a peer reaches the API, and so does this agent again", "reason", reason)
			return !a.fenced
		}
		reason += ", and a renewal tried at once failed"
	}
	if !up {
		a.m.PeerRounds.WithLabelValues("self_fence").Inc()
		a.fence("isolated", reason)
		return false
	}
	a.m.PeerRounds.WithLabelValues("stay_up").Inc()
	a.log.V(1).Info("the API is down for a quorum of agents: feeding on", "reason", reason, "quorum", quorum,
		"sinceRenewal", a.clock.Since(a.lastSuccess))
	return true
}

func peerReaches(answers []agentlease.Answer) bool {
	for _, an := range answers {
		if an.ReachesAPI {
			return true
		}
	}
	return false
}

// stop ends the agent after the loop. Only an agent that has not fenced
// and that could publish armed=false disarms the watchdog (magic close);
// any other stop leaves it running, and it resets the node.
func (a *Agent) stop() {
	if a.fenced {
		_ = a.wd.Close()
		a.log.Error(nil, "stopping after a fence: the watchdog keeps running and resets the node")
		return
	}
	if a.publishDisarmed() {
		if err := a.wd.MagicClose(); err != nil {
			a.log.Error(err, "the magic close failed: the watchdog may reset the node")
			return
		}
		a.m.Armed.Set(0)
		a.log.Info("published armed=false and disarmed the watchdog")
		return
	}
	_ = a.wd.Close()
	if a.fenced {
		a.log.Error(nil, "stopping after a fence request: the watchdog keeps running and resets the node")
		return
	}
	a.log.Error(nil, "could not publish armed=false: watchdog left running, node will reset", "within", a.bounds.WatchdogTimeout)
}

// disarmAttempt is one attempt of publishDisarmed: done once armed=false
// has landed (landed), or once the acknowledgement of a fence request read
// on the way has (not landed: the watchdog stays armed).
func (a *Agent) disarmAttempt(ctx context.Context) (done, landed bool) {
	t0 := a.clock.Now()
	l, create, err := a.getLease(ctx)
	if err != nil {
		a.renewFailed(err)
		return false, false
	}
	if req := pendingRequest(l); req != "" {
		a.fence("request", "fence requested by "+req+" while stopping")
	}
	if a.fenced {
		return a.renewOnto(ctx, l, create, t0), false
	}
	p := a.published(l)
	p.Armed = false
	if err := a.writeLease(ctx, l, create, t0, p); err != nil {
		a.renewFailed(err)
		return false, false
	}
	return true, true
}

// publishDisarmed writes armed=false within StopTimeout, attempting every
// check interval and feeding meanwhile under the loop's rule (only while
// the last renewal is under an API timeout old). A fence request read on
// the way is honoured instead: the agent fences, acknowledges, and the
// watchdog stays armed.
func (a *Agent) publishDisarmed() bool {
	ctx := context.Background()
	deadline := a.clock.Now().Add(StopTimeout)
	for {
		if done, landed := a.disarmAttempt(ctx); done {
			return landed
		}
		if !a.fenced && a.clock.Since(a.lastSuccess) < a.askAfter() {
			a.feed()
		}
		if !a.clock.Now().Add(a.bounds.CheckInterval).Before(deadline) {
			return false
		}
		<-a.clock.After(a.bounds.CheckInterval)
	}
}

// refreshMembers lists the agent Leases: the peers are their addresses
// (this node's excepted), and the membership is their number with this
// node counted. The quorum is a majority of the largest membership seen
// by this process.
func (a *Agent) refreshMembers(ctx context.Context) {
	peers, members, err := a.listMembers(ctx)
	if err != nil {
		a.m.APIFailures.WithLabelValues("list").Inc()
		a.log.Info("cannot list the agent Leases", "err", err.Error())
		return
	}
	a.memMu.Lock()
	defer a.memMu.Unlock()
	if members > a.maxMembers || !a.membersKnown {
		a.grewAt = a.clock.Now()
	}
	a.peers, a.membersKnown = peers, true
	if members > a.maxMembers {
		a.maxMembers = members
		a.log.Info("membership", "agents", members, "quorum", agentlease.QuorumOf(members), "peers", len(peers))
	}
	a.m.Members.Set(float64(a.maxMembers))
	a.m.Quorum.Set(float64(agentlease.QuorumOf(a.maxMembers)))
}

// membershipEvery is how long after a listing the next is due at now:
// SettlingInterval while the membership grew within MembershipInterval,
// else MembershipInterval.
func (a *Agent) membershipEvery(now time.Time) time.Duration {
	a.memMu.Lock()
	defer a.memMu.Unlock()
	if now.Sub(a.grewAt) < MembershipInterval {
		return SettlingInterval
	}
	return MembershipInterval
}

// members is the largest membership seen.
func (a *Agent) members() int {
	a.memMu.Lock()
	defer a.memMu.Unlock()
	return a.maxMembers
}

// knowsMembers reports whether a listing has succeeded.
func (a *Agent) knowsMembers() bool {
	a.memMu.Lock()
	defer a.memMu.Unlock()
	return a.membersKnown
}
