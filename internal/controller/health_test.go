package controller

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestHealthTrackerMeasuresOnOwnClock(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := newHealthTracker(clk, 0)
	w := 40 * time.Second

	// The renewTime value is another machine's timestamp: a value far in the
	// past or future must not matter, only when we saw it change.
	tr.observeNode("n", true)
	tr.observeLease("n", "1999-01-01T00:00:00Z", w)
	clk.SetTime(clk.Now().Add(10 * time.Second))
	tr.observeLease("n", "2099-01-01T00:00:00Z", w)
	if v := tr.view("n", w); v.leaseStale != 0 || v.healthyFor != 10*time.Second {
		t.Fatalf("after renewal: %+v", v)
	}
	// The same value again is no renewal.
	clk.SetTime(clk.Now().Add(30 * time.Second))
	tr.observeLease("n", "2099-01-01T00:00:00Z", w)
	if v := tr.view("n", w); v.leaseStale != 30*time.Second {
		t.Fatalf("stale = %s, want 30s", v.leaseStale)
	}
	// Past the window the node is not healthy.
	clk.SetTime(clk.Now().Add(15 * time.Second))
	if v := tr.view("n", w); v.healthyFor != 0 || v.leaseStale != 45*time.Second {
		t.Fatalf("past window: %+v", v)
	}
	// A renewal after the outage restarts the healthy time.
	tr.observeLease("n", "2099-01-01T00:00:10Z", w)
	clk.SetTime(clk.Now().Add(5 * time.Second))
	if v := tr.view("n", w); v.healthyFor != 5*time.Second {
		t.Fatalf("healthyFor after return = %s, want 5s", v.healthyFor)
	}
	// Ready turning False starts the not-ready time.
	tr.observeNode("n", false)
	clk.SetTime(clk.Now().Add(7 * time.Second))
	if v := tr.view("n", w); v.notReadyFor != 7*time.Second || v.healthyFor != 0 {
		t.Fatalf("not ready: %+v", v)
	}
	tr.forgetNode("n")
	tr.forgetLease("n")
	if v := tr.view("n", w); v.hasNode || v.hasLease {
		t.Fatalf("forgotten node still tracked: %+v", v)
	}
}
