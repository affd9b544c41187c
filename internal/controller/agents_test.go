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

// The tracker's Q on a timeline: with the default bounds and margin 2s, an
// agent is fresh for 3s after a renewal is seen.
func TestAgentTrackerQuorumNotFresh(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	tr := newAgentTracker(clk, 2*time.Second)
	renew := func(node string) {
		tr.observe(agentLease(published(node, 2), clk.Now()))
	}
	q := func(node string) time.Duration {
		v, ok := tr.view(node)
		if !ok {
			t.Fatalf("%s unknown", node)
		}
		return v.q.Sub(t0)
	}
	for _, n := range []string{"a", "b", "c"} {
		renew(n) // first seen: not fresh
	}
	clk.Step(time.Second)
	if got := q("a"); got != time.Second {
		t.Fatalf("nothing seen renewing yet: Q = %v, want now (1s)", got)
	}
	renew("a")
	renew("b") // 1 not fresh from here
	renew("c")
	clk.Step(10 * time.Second)
	if got := q("a"); got != 11*time.Second {
		t.Fatalf("all three went stale 3s after their renewals at 1s, so at least 2 were not fresh until now: Q = %v, want 11s", got)
	}
	// The API comes back for b and c at 20s: a quorum (2) was not fresh
	// until then, and never since while they renew every 2s.
	clk.Step(9 * time.Second)
	for range 3 {
		renew("b")
		renew("c")
		clk.Step(2 * time.Second)
	}
	if got := q("a"); got != 20*time.Second {
		t.Fatalf("b and c back at 20s: Q = %v, want 20s", got)
	}
	// b goes silent after its renewal at 24s: from 27s, a and b are not
	// fresh again.
	renew("c")
	clk.Step(2 * time.Second)
	renew("c")
	if got := q("a"); got != 28*time.Second {
		t.Fatalf("b stale since 27s: Q = %v, want now (28s)", got)
	}
	// b's Lease is deleted at 29s: the count it was part of is recorded
	// first; after it only a is not fresh.
	clk.Step(time.Second)
	tr.forget(agentLease(published("b", 2), t0))
	clk.Step(time.Second)
	renew("c")
	if got := q("a"); got != 29*time.Second {
		t.Fatalf("b deleted at 29s: Q = %v, want 29s", got)
	}
	if got := q("c"); got != 29*time.Second {
		t.Fatalf("Q is the same for every node of the same quorum: c's %v", got)
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
				tr.observe(agentLease(p, t0.Add(now)))
				m.renew(n, now, api)
			case r < 8:
				tr.forget(agentLease(published(n, 1), t0))
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
// (strict) or up to t.
func (b *bruteAgents) notFresh(t time.Duration, inclusive bool) int {
	type st struct {
		present            bool
		api, seen, renewed time.Duration
		hasRenewal         bool
	}
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
				*s = st{present: true, api: e.api, seen: e.at}
			default:
				s.api, s.renewed, s.hasRenewal = e.api, e.at, true
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
		if !s.hasRenewal || t-s.renewed >= f {
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
