package controller

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/internal/config"
)

// agentFixture is the fixture with every node in one agent class and a
// liberator agent per node. The agents renew their Leases every second of
// fake time while up, and an agent that is up acknowledges a fence request
// at the next second (and goes on renewing: the worst case, its watchdog
// has not fired yet). The controller's unhealthy window is 10s, so that
// the agent's bound (22s + margin 2s) is what a release waits for.
type agentFixture struct {
	*fixture
	// agentDown holds the nodes whose agent neither renews nor acts.
	agentDown map[string]bool
	// ackAt is when the controller was handed each node's acknowledgement.
	ackAt map[string]time.Time
	seq   int
}

func newAgentFixture(t *testing.T, objs ...runtime.Object) *agentFixture {
	t.Helper()
	f := newFixture(t, objs...)
	f.cfg.UnhealthyAfter = config.Duration{Duration: 10 * time.Second}
	f.cfg.Fencing.Classes = []config.FenceClass{{Name: "lab", Provider: config.ProviderAgent,
		SelfFence: &config.SelfFence{Margin: config.Duration{Duration: 2 * time.Second}, MaxIsolation: config.Duration{Duration: time.Minute}},
		Timeout:   config.Duration{Duration: 10 * time.Second}}}
	a := &agentFixture{fixture: f, agentDown: map[string]bool{}, ackAt: map[string]time.Time{}}
	for _, n := range fixtureNodes {
		f.create(agentLease(fixturePublished(n), fixtureStart.Add(-time.Second)))
	}
	a.newLeader()
	return a
}

// fixtureBounds are the fixture agents' bounds: isolation 10s + 1s + 1s +
// 10s = 22s, renewing every second, fresh for 10s/2 - 2s = 3s.
var fixtureBounds = agentlease.Bounds{WatchdogTimeout: 10 * time.Second, CheckInterval: time.Second,
	RenewInterval: time.Second, APITimeout: 10 * time.Second, PeerTimeout: time.Second}

// fixturePublished is what a fixture agent publishes: quorum 3 of 4.
func fixturePublished(node string) agentlease.Published {
	p := published(node, 3)
	p.Bounds = fixtureBounds
	return p
}

// newLeader builds a controller with the agent provider's own fencer (a
// fresh agent tracker) and syncs its caches, agent Leases included.
func (a *agentFixture) newLeader() {
	a.t.Helper()
	a.c = a.newController()
	a.c.fencer = a.c.defaultFencer(nil)
	a.sync()
	a.syncAgents()
}

// syncAgents hands the agent Leases on the API server to the controller,
// as its agent informer would after a re-list.
func (a *agentFixture) syncAgents() {
	a.t.Helper()
	o, err := a.tracker.List(leasesGVR, leasesGVK, agentNS)
	if err != nil {
		a.t.Fatal(err)
	}
	items, err := meta.ExtractList(o)
	if err != nil {
		a.t.Fatal(err)
	}
	on := map[string]bool{}
	for _, l := range items {
		on[l.(*coordinationv1.Lease).Name] = true
	}
	for _, o := range a.c.agentLeases.GetStore().List() {
		if l := o.(*coordinationv1.Lease); !on[l.Name] {
			a.c.agents.forget(l)
		}
	}
	a.replace(a.c.agentLeases.GetIndexer(), items)
	for _, l := range items {
		a.c.agents.observe(l.(*coordinationv1.Lease))
	}
}

// agentLeaseOnServer reads node's agent Lease from the API server.
func (a *agentFixture) agentLeaseOnServer(node string) *coordinationv1.Lease {
	a.t.Helper()
	o, err := a.tracker.Get(leasesGVR, agentNS, agentlease.LeaseName(node))
	if err != nil {
		a.t.Fatal(err)
	}
	return o.(*coordinationv1.Lease).DeepCopy()
}

// writeAgent stores node's agent Lease after fn changed it; deliver hands
// it to the controller now.
func (a *agentFixture) writeAgent(node string, deliver bool, fn func(l *coordinationv1.Lease)) {
	a.t.Helper()
	l := a.agentLeaseOnServer(node)
	fn(l)
	a.update(leasesGVR, l, agentNS)
	if deliver {
		a.c.agents.observe(l)
	}
}

// renewAgent renews node's agent Lease (the agent's clock: a new value),
// confirming the renewal before it, which landed.
func (a *agentFixture) renewAgent(node string, deliver bool) {
	a.seq++
	renew := a.clock.Now().Add(time.Duration(a.seq) * time.Microsecond)
	a.writeAgent(node, deliver, func(l *coordinationv1.Lease) {
		l.Annotations[agentlease.Renewed] = agentlease.Fingerprint(l)
		l.Spec.RenewTime.Time = renew
	})
}

// advance moves the clock on by d, a second at a time: the kubelets and
// agents that are up renew, and an agent that is up acknowledges a fence
// request addressed to it.
func (a *agentFixture) advance(d time.Duration) {
	a.t.Helper()
	for ; d > 0; d -= time.Second {
		a.fixture.advance(min(d, time.Second))
		for _, n := range fixtureNodes {
			if a.agentDown[n] {
				continue
			}
			a.renewAgent(n, true)
			if l := a.agentLeaseOnServer(n); l.Annotations[agentlease.FenceRequest] != "" &&
				l.Annotations[agentlease.FenceRequest] != l.Annotations[agentlease.FenceAck] {
				a.writeAgent(n, true, func(l *coordinationv1.Lease) {
					l.Annotations[agentlease.FenceAck] = l.Annotations[agentlease.FenceRequest]
				})
				a.ackAt[n] = a.clock.Now()
			}
		}
	}
}

// runUntilFenced steps node every second, for at most limit, until its
// Takeover holds Fenced; it returns when that was.
func (a *agentFixture) runUntilFenced(node string, limit time.Duration) (time.Time, *v1alpha1.Takeover) {
	a.t.Helper()
	for end := a.clock.Now().Add(limit); !a.clock.Now().After(end); a.advance(time.Second) {
		a.mustStep(node)
		if tk := a.takeover(node); tk != nil && tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
			return a.clock.Now(), tk
		}
	}
	a.t.Fatalf("node %s not fenced within %s: %s", node, limit, timeline(a.takeover(node)))
	return time.Time{}, nil
}

// requestPatches returns the fence requests the controller wrote on node's
// agent Lease, in order ("" for a withdrawal).
func (a *agentFixture) requestPatches(node string) []string {
	var out []string
	for _, act := range a.kube.Actions() {
		p, ok := act.(k8stesting.PatchAction)
		if !ok || !act.Matches("patch", "leases") || p.GetName() != agentlease.LeaseName(node) {
			continue
		}
		s := string(p.GetPatch())
		switch {
		case strings.Contains(s, `"`+agentlease.FenceRequest+`":null`):
			out = append(out, "")
		default:
			_, v, _ := strings.Cut(s, `"`+agentlease.FenceRequest+`":"`)
			name, _, _ := strings.Cut(v, `"`)
			out = append(out, name)
		}
	}
	return out
}

// liveAgentReads counts the Gets of node's agent Lease.
func (a *agentFixture) liveAgentReads(node string) int {
	n := 0
	for _, act := range a.kube.Actions() {
		if g, ok := act.(k8stesting.GetAction); ok && act.Matches("get", "leases") && g.GetName() == agentlease.LeaseName(node) {
			n++
		}
	}
	return n
}

// checkNothingReleasedBefore fails if the failed node's Takeover shows a
// release before t.
func (a *agentFixture) checkNothingReleasedBefore(t time.Time) {
	a.t.Helper()
	if r := a.mustTakeover(failedNode).PhaseTime(v1alpha1.PhaseReleased); r != nil && r.Time.Before(t) {
		a.t.Fatalf("released at %s, before %s", r.Time, t)
	}
}

func fenceReadyOf(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == FenceReadyCondition {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
