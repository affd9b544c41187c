package decide

import (
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// agentT0 is the fixed clock of the agent fence cases.
var agentT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return agentT0.Add(d) }

// testBounds: isolation 10s + 1s + 1s + 10s = 22s, fresh for 10s/2 - 2s =
// 3s > two renew intervals of 1s.
var testBounds = agentlease.Bounds{WatchdogTimeout: 10 * time.Second, CheckInterval: time.Second,
	RenewInterval: time.Second, APITimeout: 10 * time.Second, PeerTimeout: time.Second}

// armedAgent publishes testBounds.
func armedAgent() agentlease.Published {
	return agentlease.Published{Node: "w1", Armed: true, Bounds: testBounds, Quorum: 2, RenewTime: "2026-03-01T11:59:59.5Z"}
}

// with is an armed agent last seen renewing at 0, of a class with margin
// 2s and maxIsolation 60s, changed by fn.
func with(fn func(*AgentFence)) AgentFence {
	in := AgentFence{Published: armedAgent(), LastRenewal: at(0), Margin: 2 * time.Second, MaxIsolation: time.Minute}
	fn(&in)
	return in
}

func TestAgentFenced(t *testing.T) {
	cases := []struct {
		name  string
		in    AgentFence
		now   time.Duration
		done  bool
		after time.Duration
		acked bool
		// msg (or, with fail set, the error) must contain it.
		msg  string
		fail bool
	}{
		{name: "bound not yet passed", in: with(func(*AgentFence) {}), now: 10 * time.Second,
			after: 14 * time.Second, msg: "waiting 14s: isolation bound 22s + margin 2s from the last renewal seen 10s ago"},
		{name: "bound passed to the nanosecond", in: with(func(*AgentFence) {}), now: 24 * time.Second,
			done: true, msg: "isolation bound passed: last renewal seen 24s ago; bound 22s + margin 2s"},
		{name: "one nanosecond short", in: with(func(*AgentFence) {}), now: 24*time.Second - 1,
			after: 1, msg: "waiting"},
		{name: "a quorum not fresh after L pushes the bound", in: with(func(in *AgentFence) { in.QuorumNotFresh = at(30 * time.Second) }),
			now: 40 * time.Second, after: 14 * time.Second,
			msg: "waiting 14s: isolation bound 22s + margin 2s from when a quorum of agents was last seen not fresh, 10s ago"},
		{name: "bound from Q passed", in: with(func(in *AgentFence) { in.QuorumNotFresh = at(30 * time.Second) }),
			now: 54 * time.Second, done: true,
			msg: "isolation bound passed: last renewal seen 54s ago, a quorum of agents last seen not fresh 24s ago; bound 22s + margin 2s"},
		{name: "Q before L changes nothing", in: with(func(in *AgentFence) { in.QuorumNotFresh = at(-time.Minute) }),
			now: 24 * time.Second, done: true, msg: "last renewal seen 24s ago; bound"},
		{name: "ack: watchdog + margin not yet passed", in: with(func(in *AgentFence) { in.AckSeen = at(5 * time.Second) }),
			now: 10 * time.Second, after: 7 * time.Second, acked: true,
			msg: "waiting 7s: the agent acknowledged the fence request 5s ago; watchdog timeout 10s + margin 2s"},
		{name: "ack: released at ack + watchdog + margin", in: with(func(in *AgentFence) { in.AckSeen = at(5 * time.Second) }),
			now: 17 * time.Second, done: true, acked: true,
			msg: "agent acknowledged the fence request 12s ago; watchdog timeout 10s + margin 2s passed"},
		{name: "ack later than the bound: the bound wins", in: with(func(in *AgentFence) { in.AckSeen = at(20 * time.Second) }),
			now: 24 * time.Second, done: true, msg: "isolation bound passed"},
		{name: "ack beats a bound pushed by Q", in: with(func(in *AgentFence) {
			in.QuorumNotFresh = at(30 * time.Second)
			in.AckSeen = at(31 * time.Second)
		}), now: 43 * time.Second, done: true, acked: true, msg: "watchdog timeout 10s + margin 2s passed"},
		{name: "not armed", in: with(func(in *AgentFence) { in.Published.Armed = false }), now: time.Hour, fail: true,
			msg: "agent on w1 is not armed: it holds no watchdog that would reset the node"},
		{name: "not armed, even acknowledged", in: with(func(in *AgentFence) { in.Published.Armed = false; in.AckSeen = at(0) }), now: time.Hour, fail: true,
			msg: "is not armed"},
		{name: "bounds invalid", in: with(func(in *AgentFence) { in.Published.APITimeout = 3 * time.Second }), now: time.Hour, fail: true,
			msg: "agent on w1 publishes unusable bounds: API timeout 3s must be at least twice the renew interval 1s plus six check intervals of 1s"},
		{name: "isolation above maxIsolation", in: with(func(in *AgentFence) { in.Published.WatchdogTimeout = 58 * time.Second }), now: time.Hour, fail: true,
			msg: "agent on w1 publishes isolation 1m10s + margin 2s, above the class's maxIsolation 1m0s"},
		{name: "isolation exactly maxIsolation", in: with(func(in *AgentFence) { in.Published.WatchdogTimeout = 46 * time.Second }), now: 60 * time.Second,
			done: true, msg: "bound 58s + margin 2s"},
		{name: "could never count as fresh", in: with(func(in *AgentFence) { in.Margin = 3 * time.Second }), now: time.Hour, fail: true,
			msg: "agent on w1 could never count as fresh: half its API timeout 5s less the margin 3s is 2s, not above two renew intervals 2s (a renewal counts once the next confirms it)"},
		{name: "Lease never seen", in: with(func(in *AgentFence) { in.LastRenewal = time.Time{} }), now: time.Hour, fail: true,
			msg: "the controller has not seen the agent Lease of w1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := AgentFenced(tc.in, at(tc.now))
			if tc.fail {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want one containing %q (verdict %+v)", err, tc.msg, v)
				}
				if v.Done {
					t.Fatal("Done with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if v.Done != tc.done || v.RetryAfter != tc.after || v.Acked != tc.acked {
				t.Fatalf("got done %v retryAfter %v acked %v, want %v %v %v (%s)", v.Done, v.RetryAfter, v.Acked, tc.done, tc.after, tc.acked, v.Message)
			}
			if !strings.Contains(v.Message, tc.msg) {
				t.Fatalf("message %q, want it to contain %q", v.Message, tc.msg)
			}
		})
	}
}

// The fast profile of the test bed: --renew-interval 500ms --check-interval
// 500ms --api-timeout 6s --peer-timeout 500ms --watchdog-timeout 3s, margin
// 1s: isolation 10s, fresh for 2s.
func TestAgentFenceableFastProfile(t *testing.T) {
	p := armedAgent()
	p.Bounds = agentlease.Bounds{RenewInterval: 500 * time.Millisecond, CheckInterval: 500 * time.Millisecond,
		APITimeout: 6 * time.Second, PeerTimeout: 500 * time.Millisecond, WatchdogTimeout: 3 * time.Second}
	if err := AgentFenceable(p, time.Second, 20*time.Second); err != nil {
		t.Fatalf("fast profile refused: %v", err)
	}
	if err := AgentFenceable(p, time.Second, 10*time.Second); err == nil || err.Error() != "agent on w1 publishes isolation 10s + margin 1s, above the class's maxIsolation 10s" {
		t.Fatalf("maxIsolation 10s: %v", err)
	}
	if err := AgentFenceable(p, 2*time.Second, 20*time.Second); err == nil || !strings.Contains(err.Error(), "could never count as fresh") {
		t.Fatalf("margin 2s: %v", err)
	}
}

// Over a grid of L, Q, ack and now: Done exactly when now reaches the
// earlier of ack + watchdog + margin and max(L, Q) + isolation + margin,
// and RetryAfter is the time left to it.
func TestAgentFencedGrid(t *testing.T) {
	const margin = 2 * time.Second
	p := armedAgent()
	steps := []time.Duration{-1, 0, 3 * time.Second, 7 * time.Second, 20 * time.Second}
	for _, l := range steps[1:] {
		for _, q := range steps {
			for _, ack := range steps {
				for now := time.Duration(0); now <= 50*time.Second; now += 500 * time.Millisecond {
					in := AgentFence{Published: p, LastRenewal: at(l), Margin: margin, MaxIsolation: time.Minute}
					if q >= 0 {
						in.QuorumNotFresh = at(q)
					}
					want := max(l, q) + p.Isolation() + margin
					if ack >= 0 {
						in.AckSeen = at(ack)
						want = min(want, ack+p.WatchdogTimeout+margin)
					}
					v, err := AgentFenced(in, at(now))
					if err != nil {
						t.Fatal(err)
					}
					if v.Done != (now >= want) || (!v.Done && v.RetryAfter != want-now) {
						t.Fatalf("L %v Q %v ack %v now %v: done %v retryAfter %v, want done at %v", l, q, ack, now, v.Done, v.RetryAfter, want)
					}
				}
			}
		}
	}
}
