package controller

import (
	"sync"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// fenceSlots makes maxConcurrent exact: a node takes a slot, under one
// lock, before its incident enters Fencing, and gives it back when the
// incident leaves Fencing and Fenced. The count is the union of the slots
// held here and the incidents the cache shows in Fencing or Fenced, so
// neither a cache that lags behind a write nor two workers deciding at once
// can exceed the limit.
type fenceSlots struct {
	mu   sync.Mutex
	held map[string]bool
}

// take reserves a slot for node unless limit nodes other than it already
// hold one (here or, per active, in the cache); it reports whether node
// holds a slot.
func (s *fenceSlots) take(node string, limit int, active map[string]bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[string]bool{}
	}
	if s.held[node] {
		return true
	}
	others := 0
	for n := range active {
		if n != node && !s.held[n] {
			others++
		}
	}
	for n := range s.held {
		if n != node {
			others++
		}
	}
	if others >= limit {
		return false
	}
	s.held[node] = true
	return true
}

// give returns node's slot.
func (s *fenceSlots) give(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, node)
}

// holds reports whether node holds a slot.
func (s *fenceSlots) holds(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[node]
}

// nodesInPhases returns the nodes whose cached incident is in one of the
// phases.
func (c *Controller) nodesInPhases(phases ...v1alpha1.Phase) map[string]bool {
	out := map[string]bool{}
	for _, p := range phases {
		objs, _ := c.takeovers.GetIndexer().ByIndex(byPhase, string(p))
		for _, o := range objs {
			out[o.(*v1alpha1.Takeover).Spec.NodeName] = true
		}
	}
	return out
}

// firstSeen is when this process first saw the incident, on its own
// monotonic clock: the start of the wait provider's safe time.
func (c *Controller) firstSeen(t *v1alpha1.Takeover) time.Time {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	at, ok := c.seen[string(t.UID)+"/"+t.Name]
	if !ok {
		at = c.clock.Now()
		c.seen[string(t.UID)+"/"+t.Name] = at
	}
	return at
}

// forgetSeen drops a closed incident's first-seen time.
func (c *Controller) forgetSeen(t *v1alpha1.Takeover) {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	delete(c.seen, string(t.UID)+"/"+t.Name)
}
