package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// healthTracker measures heartbeat ages on the controller's own monotonic
// clock (docs/design.md, rule 3): it notes when it saw a node's Lease renewTime
// change, and when it saw the node's Ready condition change, and never
// compares another machine's timestamps with its own.
type healthTracker struct {
	clock clock.PassiveClock

	mu    sync.Mutex
	nodes map[string]*nodeHealth
	// lastRenewal is when any node's Lease was last seen to renew (or the
	// first Lease was seen). A gap of blindAfter or more means the view was
	// blind (API server or etcd down, or a watch stalled): nobody can renew
	// then, or nothing reaches us. The renewal that ends such a gap restarts
	// every window.
	lastRenewal time.Time
	blindAfter  time.Duration
	// resets counts the window restarts, for tests and the metric.
	resets int
}

type nodeHealth struct {
	hasLease  bool
	renew     string    // last renewTime value seen
	renewSeen time.Time // when it was seen to change (or first seen)
	// leaseBack is when the Lease was seen renewing again after a gap of at
	// least the unhealthy window (or first seen).
	leaseBack time.Time

	hasNode    bool
	ready      bool
	readySince time.Time // when the observed Ready state last changed (or first seen)
}

// nodeView is the health of one node at one instant.
type nodeView struct {
	hasLease, hasNode, ready            bool
	leaseStale, notReadyFor, healthyFor time.Duration
}

// newHealthTracker measures on c; a gap of blindAfter without any Lease
// renewal marks the view blind (0: never).
func newHealthTracker(c clock.PassiveClock, blindAfter time.Duration) *healthTracker {
	return &healthTracker{clock: c, nodes: map[string]*nodeHealth{}, blindAfter: blindAfter}
}

// setBlindAfter sets the gap that makes the view blind (half the window;
// a reload may change the window).
func (t *healthTracker) setBlindAfter(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.blindAfter = d
}

// blind reports whether no Lease renewal of any node has been seen for
// blindAfter: the controller cannot tell a dead node from a blind view.
func (t *healthTracker) blind() bool {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blindAt(now)
}

func (t *healthTracker) blindAt(now time.Time) bool {
	return t.blindAfter > 0 && !t.lastRenewal.IsZero() && now.Sub(t.lastRenewal) >= t.blindAfter
}

// restartWindows starts every node's window afresh at now (after a blind
// spell: what was not seen then proves nothing). Healthy delays restart
// too: longer, never shorter.
func (t *healthTracker) restartWindows(now time.Time) {
	for _, h := range t.nodes {
		if h.hasLease {
			h.renewSeen, h.leaseBack = now, now
		}
		if h.hasNode {
			h.readySince = now
		}
	}
	t.resets++
}

func (t *healthTracker) get(name string) *nodeHealth {
	h := t.nodes[name]
	if h == nil {
		h = &nodeHealth{}
		t.nodes[name] = h
	}
	return h
}

// observeLease records the Lease's renewTime; window is the unhealthy window,
// used to tell a renewal after an outage from a routine one.
func (t *healthTracker) observeLease(name, renew string, window time.Duration) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.get(name)
	switch {
	case !h.hasLease:
		h.hasLease, h.renew, h.renewSeen, h.leaseBack = true, renew, now, now
		if t.lastRenewal.IsZero() {
			t.lastRenewal = now
		}
	case renew != h.renew:
		if t.blindAt(now) {
			t.restartWindows(now)
		}
		t.lastRenewal = now
		if now.Sub(h.renewSeen) >= window {
			h.leaseBack = now
		}
		h.renew, h.renewSeen = renew, now
	}
}

func (t *healthTracker) forgetLease(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.nodes[name]; h != nil {
		h.hasLease, h.renew = false, ""
		if !h.hasNode {
			delete(t.nodes, name)
		}
	}
}

// observeNode records whether the node's Ready condition is True.
func (t *healthTracker) observeNode(name string, ready bool) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.get(name)
	if !h.hasNode || h.ready != ready {
		h.hasNode, h.ready, h.readySince = true, ready, now
	}
}

func (t *healthTracker) forgetNode(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.nodes[name]; h != nil {
		h.hasNode = false
		if !h.hasLease {
			delete(t.nodes, name)
		}
	}
}

// view returns the node's health now; window is the unhealthy window.
func (t *healthTracker) view(name string, window time.Duration) nodeView {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.nodes[name]
	if h == nil {
		return nodeView{}
	}
	return h.viewAt(now, window)
}

func (h *nodeHealth) viewAt(now time.Time, window time.Duration) nodeView {
	v := nodeView{hasLease: h.hasLease, hasNode: h.hasNode, ready: h.ready}
	if h.hasLease {
		v.leaseStale = now.Sub(h.renewSeen)
	}
	if h.hasNode && !h.ready {
		v.notReadyFor = now.Sub(h.readySince)
	}
	leaseFresh := !h.hasLease || v.leaseStale < window
	if h.hasNode && h.ready && leaseFresh {
		since := h.readySince
		if h.hasLease && h.leaseBack.After(since) {
			since = h.leaseBack
		}
		v.healthyFor = now.Sub(since)
		if v.healthyFor <= 0 {
			v.healthyFor = time.Nanosecond
		}
	}
	return v
}

// lastHeartbeat returns when the node's heartbeat was last seen to change
// on this clock: its Lease renewTime or, for a node without a Lease, its
// Ready condition (a window restarted after a blind spell starts there).
// It is the start of the window that expires when the node is detected;
// false when the node is not tracked.
func (t *healthTracker) lastHeartbeat(name string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.nodes[name]
	switch {
	case h == nil:
		return time.Time{}, false
	case h.hasLease:
		return h.renewSeen, true
	case h.hasNode:
		return h.readySince, true
	}
	return time.Time{}, false
}

// each calls f for every tracked node with its view, under the lock.
func (t *healthTracker) each(window time.Duration, f func(name string, v nodeView)) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, h := range t.nodes {
		f(name, h.viewAt(now, window))
	}
}
