package agentlease

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func published() Published {
	return Published{Node: "n1", Armed: true, Bounds: DefaultBounds, Quorum: 2, PeerAddress: "10.0.0.1:9447",
		BootID: "b-1", FenceAck: "tk-1", Renewed: "2026-01-02T03:04:03.5Z"}
}

func TestParseApplyRoundTrip(t *testing.T) {
	p := published()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName("n1"), Namespace: "tkr-system",
		Annotations: map[string]string{FenceRequest: "tk-1"}}}
	renew := metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC))
	l.Spec.RenewTime = &renew
	p.Apply(l)
	if l.Labels[NodeLabel] != "n1" {
		t.Errorf("labels %v, want %s=n1", l.Labels, NodeLabel)
	}
	got, err := Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.FenceRequest, want.RenewTime = "tk-1", "2026-01-02T03:04:05.6Z"
	if got != want {
		t.Errorf("Parse(Apply(p)) = %+v\nwant %+v", got, want)
	}
	// Apply leaves the controller's request alone and removes an ack
	// that is no longer published.
	p.FenceAck, p.Renewed = "", ""
	p.Apply(l)
	if _, ok := l.Annotations[Renewed]; ok {
		t.Errorf("annotations after clearing the confirmation: %v", l.Annotations)
	}
	if _, ok := l.Annotations[FenceAck]; ok || l.Annotations[FenceRequest] != "tk-1" {
		t.Errorf("annotations after clearing the ack: %v", l.Annotations)
	}
}

func TestParseNamesTheBadKey(t *testing.T) {
	for key, bad := range map[string]string{
		WatchdogTimeout: "ten", CheckInterval: "", RenewInterval: "2", APITimeout: "x", PeerTimeout: "1 s",
		Quorum: "0",
	} {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName("n1")}}
		published().Apply(l)
		l.Annotations[key] = bad
		_, err := Parse(l)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), LeaseName("n1")) {
			t.Errorf("%s=%q: %v, want an error naming the key and the Lease", key, bad, err)
		}
	}
	if _, err := Parse(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err == nil || !strings.Contains(err.Error(), Prefix) {
		t.Errorf("a Lease without the prefix: %v", err)
	}
}

func TestNodeOf(t *testing.T) {
	if n, ok := NodeOf(LeaseName("w-1")); !ok || n != "w-1" {
		t.Errorf("NodeOf(LeaseName(w-1)) = %q %v", n, ok)
	}
	for _, name := range []string{Prefix, "w-1", "liberator-controller"} {
		if _, ok := NodeOf(name); ok {
			t.Errorf("NodeOf(%q) says it is an agent Lease", name)
		}
	}
}

func TestStayUp(t *testing.T) {
	down := func(peer string) Answer { return Answer{Peer: peer, SinceSuccess: time.Minute} }
	up := func(peer string) Answer { return Answer{Peer: peer, SinceSuccess: time.Second, ReachesAPI: true} }
	for _, tc := range []struct {
		name    string
		quorum  int
		answers []Answer
		want    bool
		reason  string
	}{
		{"alone, quorum of one", 1, nil, true, "1 agents answered"},
		{"nobody answers", 2, nil, false, "only 1 of the 2"},
		{"a quorum sees the API down", 2, []Answer{down("n2")}, true, "the API is down for everyone"},
		{"a peer reaches the API", 2, []Answer{down("n2"), up("n3")}, false, "peer n3 reaches the API"},
		{"a peer reaches it, even with a quorum", 3, []Answer{up("n2"), down("n3"), down("n4")}, false, "peer n2"},
		{"too few answer", 3, []Answer{down("n2")}, false, "only 2 of the 3"},
		{"exactly a quorum", 3, []Answer{down("n2"), down("n3")}, true, "3 agents answered"},
	} {
		got, reason := StayUp(tc.quorum, tc.answers)
		if got != tc.want || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: StayUp = %v %q, want %v and a reason containing %q", tc.name, got, reason, tc.want, tc.reason)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(b *Bounds)
		want   string
	}{
		{"defaults", func(*Bounds) {}, ""},
		{"no watchdog timeout", func(b *Bounds) { b.WatchdogTimeout = 0 }, "watchdog timeout 0s must be positive"},
		{"no check interval", func(b *Bounds) { b.CheckInterval = 0 }, "check interval 0s must be positive"},
		{"no renew interval", func(b *Bounds) { b.RenewInterval = -time.Second }, "renew interval -1s must be positive"},
		{"no peer timeout", func(b *Bounds) { b.PeerTimeout = 0 }, "peer timeout 0s must be positive"},
		{"API timeout under twice renew plus six checks", func(b *Bounds) { b.APITimeout = 9900 * time.Millisecond }, "API timeout 9.9s must be at least twice the renew interval 2s plus six check intervals of 1s"},
		{"API timeout exactly twice renew plus six checks", func(b *Bounds) { b.APITimeout = 10 * time.Second }, ""},
		{"check above renew", func(b *Bounds) { b.CheckInterval, b.APITimeout = 3*time.Second, 30*time.Second }, "check interval 3s must not exceed the renew interval 2s"},
	} {
		b := DefaultBounds
		tc.change(&b)
		err := b.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestReachesAndQuorum(t *testing.T) {
	for _, tc := range []struct {
		since time.Duration
		want  bool
	}{{0, true}, {4999 * time.Millisecond, true}, {5 * time.Second, false}, {time.Minute, false}} {
		if got := Reaches(tc.since, 10*time.Second); got != tc.want {
			t.Errorf("Reaches(%s, 10s) = %v", tc.since, got)
		}
	}
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 100: 51} {
		if got := QuorumOf(n); got != want {
			t.Errorf("QuorumOf(%d) = %d, want %d", n, got, want)
		}
	}
	if got := DefaultBounds.Isolation(); got != 26*time.Second {
		t.Errorf("default isolation bound %s, want 26s", got)
	}
}
