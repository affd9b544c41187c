package agent

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// A healthy agent feeds at every check interval, renews every renew
// interval, and publishes armed=true with its bounds and quorum.
func TestHealthyAgentFeedsAndPublishes(t *testing.T) {
	b := newBed(t, testConfig(t), peerLease("n2", silentAddr(t)), peerLease("n3", silentAddr(t)))
	b.start()
	for range 50 {
		b.tick()
	}
	if _, fired := b.wd.Fired(); fired {
		t.Fatal("the watchdog fired while the agent was healthy")
	}
	if n := len(b.wd.Feeds()); n < 50 {
		t.Errorf("%d feeds in 50 iterations", n)
	}
	if got := b.lastFeed(); !got.Equal(b.clk.Now()) {
		t.Errorf("last feed at %s, want the last iteration's %s", got, b.clk.Now())
	}
	p, err := agentlease.Parse(b.lease())
	if err != nil {
		t.Fatal(err)
	}
	want := agentlease.Published{Node: testNode, Armed: true, Bounds: testBounds, Quorum: 2, PeerAddress: "127.0.0.1:9447", BootID: testBoot}
	// Each renewal confirms the one before it, which the API server
	// answered.
	before := p.RenewTime
	for i := 0; i < 10 && agentlease.Fingerprint(b.lease()) == before; i++ {
		b.tick()
	}
	next, err := agentlease.Parse(b.lease())
	if err != nil {
		t.Fatal(err)
	}
	if next.RenewTime == before || next.Renewed != before {
		t.Errorf("after the renewal at %s the Lease says renewTime %s, renewed %q; want the new renewal to confirm the old", before, next.RenewTime, next.Renewed)
	}
	p.RenewTime, p.Renewed = "", ""
	if p != want {
		t.Errorf("published %+v\nwant %+v", p, want)
	}
	l := b.lease()
	if age := b.clk.Since(l.Spec.RenewTime.Time); age > testBounds.RenewInterval {
		t.Errorf("renewTime is %s old, want at most the renew interval", age)
	}
	if *l.Spec.HolderIdentity != testNode || *l.Spec.LeaseDurationSeconds != 1 || l.Labels[agentlease.NodeLabel] != testNode {
		t.Errorf("lease holder %s, duration %d, labels %v", *l.Spec.HolderIdentity, *l.Spec.LeaseDurationSeconds, l.Labels)
	}
	// 5s of 100ms iterations with a 200ms renew interval: 25 renewals,
	// plus the first one and the one publishing armed=true.
	if n := value(b.a.m.Renewals); n < 25 || n > 28 {
		t.Errorf("%v renewals in 5s, want about 25", n)
	}
}

// isolate cuts the agent off from the API after a few healthy iterations
// and runs until it fences or 40 iterations have passed; it returns the
// start of the last successful renewal.
func isolate(t *testing.T, b *bed) time.Time {
	b.start()
	for range 5 {
		b.tick()
	}
	last := b.a.lastSuccess
	b.apiUp.Store(false)
	for i := 0; i < 40 && !b.a.fenced; i++ {
		b.tick()
	}
	return last
}

// The watchdog resets an agent that is cut off from the API and its peers
// within the published isolation bound of its last successful renewal.
func TestIsolatedAgentStopsFeedingWithinTheBound(t *testing.T) {
	b := newBed(t, testConfig(t), peerLease("n2", silentAddr(t)), peerLease("n3", silentAddr(t)))
	last := isolate(t, b)
	if !b.a.fenced {
		t.Fatal("the agent did not fence")
	}
	stopped := b.lastFeed()
	if d := stopped.Sub(last); d >= testBounds.APITimeout || d > testBounds.APITimeout+testBounds.CheckInterval+testBounds.PeerTimeout {
		t.Errorf("last feed %s after the last renewal, want under the API timeout %s", d, testBounds.APITimeout)
	}
	if d := b.clk.Now().Sub(last); d > testBounds.APITimeout+testBounds.CheckInterval {
		t.Errorf("fenced %s after the last renewal, want within the API timeout plus a check interval", d)
	}
	// The API returns: the agent never feeds again.
	b.apiUp.Store(true)
	for range 20 {
		b.tick()
	}
	if got := b.lastFeed(); !got.Equal(stopped) {
		t.Errorf("fed again at %s after fencing at %s", got, stopped)
	}
	at, fired := b.wd.Fired()
	if !fired || at.After(last.Add(testBounds.Isolation())) {
		t.Errorf("watchdog fired %v at %s, want by %s (last renewal + isolation bound)", fired, at, last.Add(testBounds.Isolation()))
	}
	if n := value(b.a.m.SelfFences.WithLabelValues("isolated")); n != 1 {
		t.Errorf("self fences (isolated) = %v", n)
	}
}

// When the API is down for everyone and a quorum of agents says so, no
// agent fences: the watchdog never fires.
func TestAPIDownForEveryoneKeepsFeeding(t *testing.T) {
	b := newBed(t, testConfig(t), peerLease("n2", responder(t, "n2", 5*time.Second, true)),
		peerLease("n3", responder(t, "n3", 5*time.Second, true)), peerLease("n4", silentAddr(t)))
	b.start()
	b.apiUp.Store(false)
	for range 60 {
		b.tick()
	}
	if b.a.fenced {
		t.Fatal("the agent fenced during an API outage seen by a quorum")
	}
	if _, fired := b.wd.Fired(); fired {
		t.Fatal("the watchdog fired during an API outage seen by a quorum")
	}
	if got := b.lastFeed(); !got.Equal(b.clk.Now()) {
		t.Errorf("last feed at %s, want the last iteration's %s", got, b.clk.Now())
	}
	if n := value(b.a.m.PeerRounds.WithLabelValues("stay_up")); n < 50 {
		t.Errorf("%v rounds kept the agent up, want one per iteration after the API timeout", n)
	}
	b.apiUp.Store(true)
	b.tick()
	if b.clk.Since(b.a.lastSuccess) > 0 {
		t.Error("the agent did not renew once the API returned")
	}
	sent, recv := value(b.a.m.PeerBytesSent), value(b.a.m.PeerBytesReceived)
	if sent == 0 || recv == 0 {
		t.Errorf("peer bytes sent %v, received %v", sent, recv)
	}
}

// The end of an API outage for everyone: the peers renew first and answer
// that they reach the API. The agent must not take that for isolation
// while its own renewal works, even when the renewal it tried before the
// round still failed.
func TestAPIOutageEndsWithoutAReset(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failNext int32
	}{
		{"the renewal succeeds first", 0},
		{"the renewal before the round fails, the one after succeeds", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var back atomic.Bool
			since := func() (time.Duration, bool) {
				if back.Load() {
					return 100 * time.Millisecond, true
				}
				return time.Hour, true
			}
			b := newBed(t, testConfig(t), peerLease("n2", responderFunc(t, "n2", since)), peerLease("n3", responderFunc(t, "n3", since)))
			b.start()
			b.tick()
			b.apiUp.Store(false)
			for range 20 {
				b.tick()
			}
			if b.a.fenced {
				t.Fatal("the agent fenced during the outage")
			}
			b.failNext.Store(tc.failNext)
			back.Store(true)
			b.apiUp.Store(true)
			b.tick()
			if b.a.fenced {
				t.Fatalf("the agent fenced as the API came back: %s", b.a.fenceReason)
			}
			if b.clk.Since(b.a.lastSuccess) >= b.a.askAfter() {
				t.Fatal("the agent did not renew once the API returned")
			}
			if got := b.lastFeed(); !got.Equal(b.clk.Now()) {
				t.Errorf("last feed at %s, want the last iteration's %s", got, b.clk.Now())
			}
		})
	}
}

// The agent fences when it is the one cut off: a peer reaches the API, or
// too few agents answer.
func TestCutOffAgentFences(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peers func(t *testing.T) []runtime.Object
		want  string
	}{
		{"a peer reaches the API", func(t *testing.T) []runtime.Object {
			return []runtime.Object{peerLease("n2", responder(t, "n2", 5*time.Second, true)),
				peerLease("n3", responder(t, "n3", 100*time.Millisecond, true))}
		}, "peer n3 reaches the API"},
		{"too few answer", func(t *testing.T) []runtime.Object {
			return []runtime.Object{peerLease("n2", responder(t, "n2", 5*time.Second, true)),
				peerLease("n3", responder(t, "n3", 5*time.Second, false)), peerLease("n4", silentAddr(t)),
				peerLease("n5", silentAddr(t))}
		}, "only 2 of the 3 agents needed answered"},
		{"the answers are not authenticated", func(t *testing.T) []runtime.Object {
			return []runtime.Object{peerLease("n2", rogueKey(t, "n2")), peerLease("n3", rogueKey(t, "n3"))}
		}, "only 1 of the 2 agents needed answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, testConfig(t), tc.peers(t)...)
			last := isolate(t, b)
			if !b.a.fenced {
				t.Fatal("the agent did not fence")
			}
			if d := b.lastFeed().Sub(last); d >= testBounds.APITimeout {
				t.Errorf("last feed %s after the last renewal", d)
			}
			if n := value(b.a.m.PeerRounds.WithLabelValues("self_fence")); n != 1 {
				t.Errorf("%v rounds ended in a fence", n)
			}
			if !strings.Contains(b.a.fenceReason, tc.want) {
				t.Errorf("fenced because %q, want %q", b.a.fenceReason, tc.want)
			}
		})
	}
}

// An agent that started before its peers created their Leases learns of
// them within the settling interval, not the membership interval, and
// publishes the larger quorum.
func TestMembershipSettlesQuickly(t *testing.T) {
	b := newBed(t, testConfig(t), peerLease("n2", silentAddr(t)))
	b.start()
	if got := b.a.members(); got != 2 {
		t.Fatalf("members at start %d, want 2", got)
	}
	added := b.clk.Now()
	for _, n := range []string{"n3", "n4"} {
		if err := b.kube.Tracker().Add(peerLease(n, silentAddr(t))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.a.members() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("members %d after %s of agent time, want 4", b.a.members(), b.clk.Since(b.a.lastMembers))
		}
		b.tick()
		time.Sleep(time.Millisecond) // the listing runs beside the loop
	}
	if took := b.clk.Since(added); took > SettlingInterval+2*testBounds.CheckInterval {
		t.Errorf("the new peers were learnt %s after they appeared, want within the settling interval %s", took, SettlingInterval)
	}
	if got := b.a.membershipEvery(b.clk.Now().Add(MembershipInterval)); got != MembershipInterval {
		t.Errorf("listing every %s once settled, want %s", got, MembershipInterval)
	}
}
