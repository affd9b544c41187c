package agent

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// ackWrite is what the agent had done when a write carrying a fence-ack
// reached the API.
type ackWrite struct {
	ack    string
	feeds  int
	fenced bool
	armed  bool
	at     time.Time
}

// watchAcks records every write of the agent Lease that carries an ack.
func watchAcks(b *bed) *[]ackWrite {
	var writes []ackWrite
	record := func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(interface{ GetObject() runtime.Object }).GetObject().(*coordinationv1.Lease)
		if ack := l.Annotations[agentlease.FenceAck]; ack != "" && b.apiUp.Load() {
			armed, _, _ := b.wd.State()
			writes = append(writes, ackWrite{ack: ack, feeds: len(b.wd.Feeds()), fenced: b.a.fenced, armed: armed, at: b.clk.Now()})
		}
		return false, nil, nil
	}
	b.kube.PrependReactor("update", "leases", record)
	b.kube.PrependReactor("create", "leases", record)
	return &writes
}

// On a fence request the agent stops feeding first, then acknowledges; it
// never feeds again, and the watchdog fires within its timeout of the
// acknowledgement.
func TestFenceRequestStopsFeedingBeforeTheAck(t *testing.T) {
	b := newBed(t, testConfig(t))
	b.start()
	writes := watchAcks(b)
	for range 5 {
		b.tick()
	}
	b.setAnnotation(agentlease.FenceRequest, "tk-n1")
	for range 20 {
		b.tick()
	}
	if len(*writes) == 0 {
		t.Fatal("no acknowledgement was written")
	}
	first := (*writes)[0]
	if first.ack != "tk-n1" || !first.fenced {
		t.Fatalf("first ack %+v: want tk-n1 written once the agent had fenced", first)
	}
	if n := len(b.wd.Feeds()); n != first.feeds {
		t.Errorf("%d feeds at the acknowledgement, %d now: the agent fed after acknowledging", first.feeds, n)
	}
	if p, err := agentlease.Parse(b.lease()); err != nil || p.FenceAck != "tk-n1" || !p.Armed {
		t.Errorf("lease says %+v (%v), want the ack with armed=true (the watchdog is held, unfed)", p, err)
	}
	at, fired := b.wd.Fired()
	if !fired || at.After(first.at.Add(b.a.bounds.WatchdogTimeout)) {
		t.Errorf("watchdog fired %v at %s, want within the watchdog timeout of the ack at %s", fired, at, first.at)
	}
	if n := value(b.a.m.SelfFences.WithLabelValues("request")); n != 1 {
		t.Errorf("self fences (request) = %v", n)
	}
}

// The acknowledgement is retried until it lands: the API fails the first
// attempts.
func TestFenceAckRetriedUntilItLands(t *testing.T) {
	b := newBed(t, testConfig(t))
	b.start()
	writes := watchAcks(b)
	b.setAnnotation(agentlease.FenceRequest, "tk-n1")
	b.tick()
	b.tick() // renewal due: the request is read, the ack written
	if !b.a.fenced || len(*writes) != 1 {
		t.Fatalf("fenced %v, %d ack writes", b.a.fenced, len(*writes))
	}
	// A fresh request after the API fails for a while.
	b.setAnnotation(agentlease.FenceRequest, "tk-n1-b")
	b.apiUp.Store(false)
	for range 10 {
		b.tick()
	}
	b.apiUp.Store(true)
	b.tick()
	if got := b.lease().Annotations[agentlease.FenceAck]; got != "tk-n1-b" {
		t.Errorf("fence-ack %q after the API returned, want tk-n1-b", got)
	}
}

// A starting agent renews with armed=false before it opens the watchdog,
// then publishes armed=true; with a fence request pending it arms, never
// feeds, and acknowledges; with a request acknowledged in this boot it does
// not arm; one acknowledged in an earlier boot was ended by that boot's
// reset, and it arms as usual.
func TestStartAndFenceRequests(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ann            map[string]string
		wantArmed      bool
		wantFenced     bool
		wantAck        string
		wantFeedsAfter bool
	}{
		{"no request", nil, true, false, "", true},
		{"pending request", map[string]string{agentlease.FenceRequest: "tk"}, true, true, "tk", false},
		{"acknowledged in this boot", map[string]string{agentlease.FenceRequest: "tk", agentlease.FenceAck: "tk", agentlease.BootID: testBoot}, false, false, "tk", false},
		{"acknowledged in an earlier boot", map[string]string{agentlease.FenceRequest: "tk", agentlease.FenceAck: "tk", agentlease.BootID: "boot-0"}, true, false, "tk", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := peerLease(testNode, "127.0.0.1:9447")
			for k, v := range tc.ann {
				l.Annotations[k] = v
			}
			b := newBed(t, testConfig(t), l)
			var armedAtFirstWrite []bool
			b.kube.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
				w := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
				armed, _, _ := b.wd.State()
				if len(armedAtFirstWrite) == 0 && w.Annotations[agentlease.Armed] != "true" && armed {
					t.Error("the watchdog was open when armed=false was written")
				}
				armedAtFirstWrite = append(armedAtFirstWrite, w.Annotations[agentlease.Armed] == "true")
				return false, nil, nil
			})
			if err := b.runStart(5); err != nil {
				t.Fatal(err)
			}
			if (b.a.wd != nil) != tc.wantArmed || b.a.fenced != tc.wantFenced {
				t.Fatalf("armed %v fenced %v, want %v %v", b.a.wd != nil, b.a.fenced, tc.wantArmed, tc.wantFenced)
			}
			if !tc.wantArmed {
				if len(armedAtFirstWrite) != 0 || len(b.wd.Feeds()) != 0 {
					t.Errorf("%d writes and %d feeds by an agent whose node was fenced in this boot", len(armedAtFirstWrite), len(b.wd.Feeds()))
				}
				return
			}
			feeds := len(b.wd.Feeds())
			b.tick()
			if p, _ := agentlease.Parse(b.lease()); !p.Armed || p.FenceAck != tc.wantAck {
				t.Errorf("after the first iteration the lease says armed %v ack %q, want true %q", p.Armed, p.FenceAck, tc.wantAck)
			}
			if fed := len(b.wd.Feeds()) > feeds; fed != tc.wantFeedsAfter {
				t.Errorf("fed after the start: %v, want %v", fed, tc.wantFeedsAfter)
			}
		})
	}
}
