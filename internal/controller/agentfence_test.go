package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/agentlease"
)

// The kubelet is dead, the agent lives: it acknowledges the request, and
// the node is released only once its watchdog timeout plus the margin have
// passed since the controller saw the acknowledgement, although the agent
// goes on renewing.
func TestAgentFenceAcknowledged(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	a.fail(failedNode)
	fenced, tk := a.runUntilFenced(failedNode, time.Minute)
	ack, ok := a.ackAt[failedNode]
	if !ok {
		t.Fatal("the agent never saw a fence request")
	}
	if got := fenced.Sub(ack); got < 12*time.Second || got > 13*time.Second {
		t.Fatalf("Fenced %s after the acknowledgement was seen, want 12s (watchdog 10s + margin 2s) and at most a step more", got)
	}
	if !strings.Contains(tk.Status.FenceOutput, "agent acknowledged the fence request 12s ago; watchdog timeout 10s + margin 2s passed") {
		t.Fatalf("fence output %q", tk.Status.FenceOutput)
	}
	if !tk.Status.RebootRequired {
		t.Fatal("an agent fence must require a new boot ID")
	}
	if got := a.requestPatches(failedNode); len(got) != 2 || got[0] != tk.Name || got[1] != "" {
		t.Fatalf("fence request patches %q, want %s then its withdrawal", got, tk.Name)
	}
	a.stepUntil(failedNode, v1alpha1.PhaseReleased, 2)
	for _, n := range []string{"w2", "w3", "w4"} {
		if got := a.requestPatches(n); len(got) > 0 {
			t.Fatalf("healthy node %s was asked to fence: %q", n, got)
		}
	}
}

// The node is cut off, agent and all: it is released at its last renewal
// seen plus the isolation bound (22s) plus the margin, not before.
func TestAgentFenceIsolationBound(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	a.fail(failedNode)
	a.agentDown[failedNode] = true
	cut := a.clock.Now() // its last renewal was seen here
	fenced, tk := a.runUntilFenced(failedNode, time.Minute)
	if got := fenced.Sub(cut); got != 24*time.Second {
		t.Fatalf("Fenced %s after the last renewal seen, want exactly 24s (bound 22s + margin 2s, stepped each second)", got)
	}
	if !strings.Contains(tk.Status.FenceOutput, "isolation bound passed: last renewal seen 24s ago; bound 22s + margin 2s") {
		t.Fatalf("fence output %q", tk.Status.FenceOutput)
	}
	if got := a.liveAgentReads(failedNode); got != 1 {
		t.Fatalf("%d live reads of the agent Lease, want 1 (right before Done)", got)
	}
}

// A renewal the controller's cache has not seen yet, found by the live
// re-read, voids the bound: not fenced then, and a whole bound later once
// the renewal is seen.
func TestAgentFenceLiveRenewalBlocksDone(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	a.fail(failedNode)
	a.agentDown[failedNode] = true
	a.advance(23 * time.Second)
	a.mustStep(failedNode)
	a.mustStep(failedNode)
	if tk := a.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseFencing {
		t.Fatalf("phase %s, want Fencing", tk.Status.Phase)
	}
	a.renewAgent(failedNode, false) // on the API server only
	a.advance(time.Second)
	after := a.mustStep(failedNode)
	tk := a.mustTakeover(failedNode)
	if tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
		t.Fatalf("fenced although the agent renewed (read live): %s", timeline(tk))
	}
	if after != time.Second {
		t.Fatalf("requeue after %s, want the agent's check interval 1s", after)
	}
	a.syncAgents() // the renewal reaches the cache now
	seen := a.clock.Now()
	fenced, _ := a.runUntilFenced(failedNode, time.Minute)
	if got := fenced.Sub(seen); got != 24*time.Second {
		t.Fatalf("Fenced %s after the renewal was seen, want 24s", got)
	}
	a.checkNothingReleasedBefore(fenced)
}

// A controller that has just started (a new leader) knows no agent to be
// fresh: it waits a whole bound from its start, whatever the previous
// leader saw.
func TestAgentFenceNewLeaderWaitsAWholeBound(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	a.fail(failedNode)
	a.agentDown[failedNode] = true
	a.advance(15 * time.Second)
	a.mustStep(failedNode)
	a.mustStep(failedNode)
	if tk := a.mustTakeover(failedNode); tk.Status.Phase != v1alpha1.PhaseFencing {
		t.Fatalf("phase %s, want Fencing", tk.Status.Phase)
	}
	a.newLeader()
	start := a.clock.Now()
	fenced, _ := a.runUntilFenced(failedNode, time.Minute)
	if got := fenced.Sub(start); got < 24*time.Second {
		t.Fatalf("the new leader fenced %s after its start, want a whole bound (24s)", got)
	}
}

// An API outage for everyone: no agent renews, so a quorum of agents is
// not fresh and may keep each other up. A node that stays cut off after
// the others return is released only a whole bound after they are fresh
// again: their first renewal after the outage is late (no anchor), the
// second is on time, and the third confirms it, 2s after the return.
func TestAgentFenceQuorumOutagePushesTheBound(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	for _, n := range fixtureNodes {
		a.fail(n)
		a.agentDown[n] = true
	}
	a.advance(60 * time.Second)
	for _, n := range []string{"w2", "w3", "w4"} {
		a.revive(n)
		delete(a.agentDown, n)
		a.renewAgent(n, true)
	}
	back := a.clock.Now()
	fenced, tk := a.runUntilFenced(failedNode, time.Minute)
	if got := fenced.Sub(back); got != 26*time.Second {
		t.Fatalf("Fenced %s after the API returned, want 26s (a whole bound, 24s, after the quorum was last not fresh, 2s after the return)", got)
	}
	if !strings.Contains(tk.Status.FenceOutput, "a quorum of agents last seen not fresh 24s ago") {
		t.Fatalf("fence output %q", tk.Status.FenceOutput)
	}
}

// An agent that is not armed is no fence: the attempt fails, nothing is
// released, and FenceReady says why.
func TestAgentNotArmedNotFenceable(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.writeAgent(failedNode, true, func(l *coordinationv1.Lease) { l.Annotations[agentlease.Armed] = "false" })
	a.advance(20 * time.Second)
	a.fail(failedNode)
	a.advance(12 * time.Second)
	a.mustStep(failedNode)
	a.mustStep(failedNode)
	tk := a.mustTakeover(failedNode)
	if tk.Status.Phase != v1alpha1.PhaseFailed || !strings.Contains(tk.Status.Message, "agent on w1 is not armed: it holds no watchdog that would reset the node") {
		t.Fatalf("Takeover %s: %s", tk.Status.Phase, tk.Status.Message)
	}
	a.checkNothingReleased(failedNode)
	cond := fenceReadyOf(a.node(failedNode))
	if cond == nil || cond.Status != corev1.ConditionFalse || !strings.Contains(cond.Message, "is not armed") {
		t.Fatalf("FenceReady %+v", cond)
	}
}

// FenceReady for agent classes: True while the agent is armed, fresh and
// its bounds fit; False naming what does not.
func TestAgentFenceReady(t *testing.T) {
	a := newAgentFixture(t)
	a.writeAgent("w2", true, func(l *coordinationv1.Lease) { l.Annotations[agentlease.WatchdogTimeout] = "58s" })
	a.writeAgent("w3", true, func(l *coordinationv1.Lease) { l.Annotations[agentlease.APITimeout] = "3s" })
	if err := a.tracker.Delete(leasesGVR, agentNS, agentlease.LeaseName("w4")); err != nil {
		t.Fatal(err)
	}
	a.agentDown["w4"] = true
	a.advance(5 * time.Second)
	a.syncAgents()
	a.c.checkFences(context.Background())
	want := map[string]struct {
		status      corev1.ConditionStatus
		reason, msg string
	}{
		"w1": {corev1.ConditionTrue, ReasonAgentArmed, "agent on w1 is armed: cut off, its node is reset within 22s + margin 2s of its last renewal; on request, within its watchdog timeout 10s + margin 2s (class lab)"},
		"w2": {corev1.ConditionFalse, ReasonAgentNotReady, "agent on w2 publishes isolation 1m10s + margin 2s, above the class's maxIsolation 1m0s (class lab, provider agent)"},
		"w3": {corev1.ConditionFalse, ReasonAgentNotReady, "agent on w3 publishes unusable bounds: API timeout 3s must be at least twice the renew interval 1s plus six check intervals of 1s"},
		"w4": {corev1.ConditionFalse, ReasonAgentNotReady, "no agent Lease tkr-system/liberator-agent-w4 seen: the liberator agent does not run on w4"},
	}
	for node, w := range want {
		cond := fenceReadyOf(a.node(node))
		if cond == nil || cond.Status != w.status || cond.Reason != w.reason || !strings.Contains(cond.Message, w.msg) {
			t.Errorf("%s: FenceReady %+v, want %s %s containing %q", node, cond, w.status, w.reason, w.msg)
		}
	}
	// w1's agent falls silent: not fresh after half its API timeout less
	// the margin (3s).
	a.agentDown["w1"] = true
	a.advance(3 * time.Second)
	a.sync()
	a.c.checkFences(context.Background())
	if cond := fenceReadyOf(a.node("w1")); cond == nil || cond.Status != corev1.ConditionFalse ||
		!strings.Contains(cond.Message, "agent on w1 is not fresh: no renewal of its Lease seen for 3s (fresh means within 3s, half its API timeout less the margin)") {
		t.Fatalf("w1 silent: FenceReady %+v", cond)
	}
}

// A node reset on request comes back before the acknowledgement's wait
// ends, and its new agent publishes armed: false for its first renewal:
// the new boot ID read live proves the reset, so the fence completes.
func TestAgentFenceNewBootIDProvesTheReset(t *testing.T) {
	a := newAgentFixture(t, statefulWorkload()...)
	a.advance(30 * time.Second)
	a.fail(failedNode)
	for range 20 {
		a.advance(time.Second)
		a.mustStep(failedNode)
		if _, ok := a.ackAt[failedNode]; ok {
			break
		}
	}
	ack, ok := a.ackAt[failedNode]
	if !ok {
		t.Fatal("no acknowledgement")
	}
	a.agentDown[failedNode] = true // reset by its watchdog
	a.advance(11 * time.Second)
	a.writeAgent(failedNode, false, func(l *coordinationv1.Lease) { // back, first renewal
		l.Annotations[agentlease.Armed] = "false"
		l.Annotations[agentlease.BootID] = "boot-w1-2"
		l.Spec.RenewTime.Time = a.clock.Now()
	})
	fenced, _ := a.runUntilFenced(failedNode, 5*time.Second)
	if got := fenced.Sub(ack); got != 12*time.Second {
		t.Fatalf("Fenced %s after the acknowledgement, want 12s", got)
	}
}
