package controller

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// agentNS is where the fixtures keep the agent Leases (leaderElection's
// namespace).
const agentNS = "tkr-system"

// agentLease is node's agent Lease publishing p, renewed at renew (the
// agent's clock: only the value changing matters).
func agentLease(p agentlease.Published, renew time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: agentlease.LeaseName(p.Node), Namespace: agentNS},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(p.Node), LeaseDurationSeconds: ptr.To[int32](10),
			RenewTime: &metav1.MicroTime{Time: renew}},
	}
	p.Apply(l)
	if p.FenceRequest != "" {
		l.Annotations[agentlease.FenceRequest] = p.FenceRequest
	}
	return l
}

func published(node string, quorum int) agentlease.Published {
	return agentlease.Published{Node: node, Armed: true, Bounds: agentlease.DefaultBounds, Quorum: quorum,
		PeerAddress: "10.0.0.1:9447", BootID: "boot-" + node + "-1"}
}

// confirmer writes agent Leases as an agent does: each renewal confirms
// the one before it (agentlease.Renewed).
type confirmer map[string]time.Time

func (c confirmer) lease(p agentlease.Published, renew time.Time) *coordinationv1.Lease {
	if prev, ok := c[p.Node]; ok {
		p.Renewed = prev.UTC().Format(time.RFC3339Nano)
	}
	c[p.Node] = renew
	return agentLease(p, renew)
}

// The tracker's Q on a timeline: with the default bounds (API timeout 14s,
// renew interval 2s) and margin 2s, an agent is fresh for 5s after the
// sighting of a renewal that a later one confirms, and a sighting counts
// when the agent's previous renewal was seen at most 6s before it.
func TestAgentTrackerQuorumNotFresh(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	tr := newAgentTracker(clk, 2*time.Second)
	w := confirmer{}
	renew := func(nodes ...string) {
		for _, n := range nodes {
			tr.observe(w.lease(published(n, 2), clk.Now()))
		}
	}
	q := func(node string) time.Duration {
		v, ok := tr.view(node)
		if !ok {
			t.Fatalf("%s unknown", node)
		}
		return v.q.Sub(t0)
	}
	renew("a", "b", "c") // first seen: not fresh, and no sighting
	clk.Step(time.Second)
	if got := q("a"); got != time.Second {
		t.Fatalf("nothing seen renewing yet: Q = %v, want now (1s)", got)
	}
	renew("a", "b", "c") // 1s: a change, but nothing seen before it on time
	clk.Step(2 * time.Second)
	renew("a", "b", "c") // 3s: on time, confirms 1s (no sighting)
	clk.Step(2 * time.Second)
	renew("a", "b", "c") // 5s: confirms 3s: fresh until 8s
	if got := q("a"); got != 5*time.Second {
		t.Fatalf("fresh from the confirmation at 5s: Q = %v, want 5s", got)
	}
	clk.Step(15 * time.Second)
	if got := q("a"); got != 20*time.Second {
		t.Fatalf("all three stale since 8s: Q = %v, want now (20s)", got)
	}
	// The API comes back for b and c at 20s. Their renewal at 20s is late
	// (their last was seen at 5s), so it cannot anchor; 22s is on time and
	// 24s confirms it: from 24s only a is not fresh.
	for range 4 {
		renew("b", "c")
		clk.Step(2 * time.Second)
	}
	if got := q("a"); got != 24*time.Second {
		t.Fatalf("b and c fresh again from 24s: Q = %v, want 24s", got)
	}
	// b goes silent after its renewal at 26s (anchor 24s, fresh until 29s).
	renew("c")
	clk.Step(2 * time.Second)
	renew("c")
	if got := q("a"); got != 30*time.Second {
		t.Fatalf("b stale since 29s: Q = %v, want now (30s)", got)
	}
	// b's Lease is deleted at 31s: the count it was part of is recorded
	// first; after it only a is not fresh.
	clk.Step(time.Second)
	tr.forget(agentLease(published("b", 2), t0))
	clk.Step(time.Second)
	renew("c")
	if got := q("a"); got != 31*time.Second {
		t.Fatalf("b deleted at 31s: Q = %v, want 31s", got)
	}
	if got := q("c"); got != 31*time.Second {
		t.Fatalf("Q is the same for every node of the same quorum: c's %v", got)
	}
}

// A renewal seen but never confirmed (it may have landed after the agent
// gave up on it) makes nobody fresh; a watch error or a blind view forgets
// every freshness until two renewals are again seen on time.
func TestAgentTrackerConfirmationAndDistrust(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	tr := newAgentTracker(clk, 2*time.Second)
	blind := false
	tr.blind = func() bool { return blind }
	w := confirmer{}
	fresh := func() int {
		tr.view("a")
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.fresh
	}
	// Renewals that never confirm one another: never fresh.
	for i := range 5 {
		tr.observe(agentLease(published("a", 1), t0.Add(time.Duration(i)*2*time.Second)))
		clk.Step(2 * time.Second)
	}
	if n := fresh(); n != 0 {
		t.Fatalf("unconfirmed renewals made %d agents fresh", n)
	}
	for range 3 {
		tr.observe(w.lease(published("a", 1), clk.Now()))
		clk.Step(2 * time.Second)
	}
	if n := fresh(); n != 1 {
		t.Fatalf("confirmed renewals on time: %d fresh, want 1", n)
	}
	tr.distrust()
	if n := fresh(); n != 0 {
		t.Fatalf("after a watch error: %d fresh, want 0", n)
	}
	tr.observe(w.lease(published("a", 1), clk.Now()))
	clk.Step(2 * time.Second)
	if n := fresh(); n != 0 {
		t.Fatalf("one renewal after a watch error: %d fresh, want 0", n)
	}
	for range 2 {
		tr.observe(w.lease(published("a", 1), clk.Now()))
		clk.Step(time.Second)
	}
	if n := fresh(); n != 1 {
		t.Fatalf("two renewals on time after the watch error: %d fresh, want 1", n)
	}
	blind = true
	if n := fresh(); n != 0 {
		t.Fatalf("blind view: %d fresh, want 0", n)
	}
	if got := tr.quorumNotFresh(1); !got.Equal(clk.Now()) {
		t.Fatalf("blind view: Q = %v, want now", got.Sub(t0))
	}
}

// Q is exact: on random event sequences it equals the last instant at
// which a brute-force recount saw at least k agents not fresh.
func TestAgentTrackerQuorumExact(t *testing.T) {
	const margin = 2 * time.Second
	rng := rand.New(rand.NewSource(1))
	checked := 0
	for round := range 200 {
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		clk := clocktesting.NewFakeClock(t0)
		tr := newAgentTracker(clk, margin)
		m := newBruteAgents(t0, margin)
		w := confirmer{}
		nodes := []string{"a", "b", "c", "d", "e"}
		now := time.Duration(0)
		for ev := range 60 {
			now += time.Duration(1+rng.Intn(2500)) * time.Millisecond // distinct instants
			clk.SetTime(t0.Add(now))
			n := nodes[rng.Intn(len(nodes))]
			switch r := rng.Intn(10); {
			case r < 7:
				api := []time.Duration{10 * time.Second, 8 * time.Second, 12 * time.Second}[rng.Intn(3)]
				p := published(n, 1+rng.Intn(5))
				p.APITimeout = api
				tr.observe(w.lease(p, t0.Add(now)))
				m.renew(n, now, api)
			case r < 8:
				tr.forget(agentLease(published(n, 1), t0))
				delete(w, n)
				m.remove(n, now)
			default:
				v, ok := tr.view(n)
				if !ok {
					continue
				}
				k := v.pub.Quorum
				checked++
				if want := m.lastAtLeast(k, now); !v.q.Equal(t0.Add(want)) {
					t.Fatalf("round %d event %d: Q(%d) at %v = %v, brute force %v\n%s", round, ev, k, now, v.q.Sub(t0), want, m.log)
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d evaluations checked", checked)
	}
}

// bruteAgents recounts the agents not fresh from the whole history.
type bruteAgents struct {
	t0     time.Time
	margin time.Duration
	// events of each agent: renewal seen (first one: first seen) or gone.
	hist map[string][]bruteEvent
	log  string
}

type bruteEvent struct {
	at   time.Duration
	api  time.Duration
	gone bool
}

func newBruteAgents(t0 time.Time, margin time.Duration) *bruteAgents {
	return &bruteAgents{t0: t0, margin: margin, hist: map[string][]bruteEvent{}}
}

func (b *bruteAgents) renew(n string, at, api time.Duration) {
	b.hist[n] = append(b.hist[n], bruteEvent{at: at, api: api})
	b.log += fmt.Sprintf("%v renew %s api %v\n", at, n, api)
}

func (b *bruteAgents) remove(n string, at time.Duration) {
	b.hist[n] = append(b.hist[n], bruteEvent{at: at, gone: true})
	b.log += fmt.Sprintf("%v gone %s\n", at, n)
}

// notFresh counts the agents not fresh at t, with the events before t
// (strict) or up to t. Each renewal confirms the one before it; a renewal
// is a sighting when the agent's previous change was seen at most two
// renew intervals (2s each) plus the margin before it; an agent is fresh
// while the latest sighting confirmed is under F old.
func (b *bruteAgents) notFresh(t time.Duration, inclusive bool) int {
	type st struct {
		present                       bool
		api, prev, lastChange, anchor time.Duration
		hasLastChange, hasAnchor      bool
		sighted                       map[time.Duration]bool
	}
	window := 2*agentlease.DefaultBounds.RenewInterval + b.margin
	agents := map[string]*st{}
	for n, evs := range b.hist {
		s := &st{}
		for _, e := range evs {
			if e.at > t || (!inclusive && e.at == t) {
				break
			}
			switch {
			case e.gone:
				*s = st{}
			case !s.present:
				*s = st{present: true, api: e.api, prev: e.at, sighted: map[time.Duration]bool{}}
			default:
				s.api = e.api
				if s.hasLastChange && e.at-s.lastChange <= window {
					s.sighted[e.at] = true
				}
				s.lastChange, s.hasLastChange = e.at, true
				if s.sighted[s.prev] && (!s.hasAnchor || s.prev > s.anchor) {
					s.anchor, s.hasAnchor = s.prev, true
				}
				s.prev = e.at
			}
		}
		if s.present {
			agents[n] = s
		}
	}
	var minAPI time.Duration
	for _, s := range agents {
		if minAPI == 0 || s.api < minAPI {
			minAPI = s.api
		}
	}
	f := minAPI/2 - b.margin
	count := 0
	for _, s := range agents {
		if !s.hasAnchor || t-s.anchor >= f {
			count++
		}
	}
	return count
}

// lastAtLeast is the last instant up to now at which at least k agents
// were not fresh (just before or just after the events of that instant),
// never before the start. The count grows only as time passes and drops
// only at events, so the instant is now or an event's.
func (b *bruteAgents) lastAtLeast(k int, now time.Duration) time.Duration {
	cands := []time.Duration{now}
	for _, evs := range b.hist {
		for _, e := range evs {
			if e.at <= now {
				cands = append(cands, e.at)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i] > cands[j] })
	for _, t := range cands {
		if b.notFresh(t, false) >= k || b.notFresh(t, true) >= k {
			return t
		}
	}
	return 0
}
