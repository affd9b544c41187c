package controller

import (
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Labels by which Kubernetes marks control-plane nodes.
var controlPlaneLabels = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

// eligible applies the selector, control-plane and opt-out rules.
func eligible(cfg *settings, n *corev1.Node) (bool, string) {
	if n.Labels[cfg.OptOutLabel] == "true" {
		return false, "opted out with label " + cfg.OptOutLabel + "=true"
	}
	if !cfg.IncludeControlPlane {
		for _, l := range controlPlaneLabels {
			if _, ok := n.Labels[l]; ok {
				return false, "control-plane node (includeControlPlane is false)"
			}
		}
	}
	if !cfg.selector.Empty() && !cfg.selector.Matches(labels.Set(n.Labels)) {
		return false, "outside nodeSelector " + cfg.selector.String()
	}
	return true, ""
}

// decideNode is the view as decide reads a node's health.
func (v nodeView) decideNode() decide.Node {
	return decide.Node{Exists: v.hasNode, HasLease: v.hasLease, LeaseStaleFor: v.leaseStale, Ready: v.ready, NotReadyFor: v.notReadyFor}
}

// takenOver returns the nodes whose incident released them: their
// workloads run elsewhere, and they no longer count in the storm guard.
func (c *Controller) takenOver() map[string]bool {
	return c.nodesInPhases(v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
}

// tally is one count of the eligible nodes: the unhealthy ones, the
// suspects (not yet unhealthy, but silent for half the window), and those
// NotReady while their Lease renews. Nodes already taken over (released,
// waiting to return) are not counted: they would hold every later takeover
// for as long as they stay dead.
type tally struct{ eligible, unhealthy, suspect, notReadyLeaseLive int }

// count tallies, on the controller's clock, the eligible nodes and the
// unhealthy ones among them, and names the unhealthy. The tick's scan and
// the fresh count of an acting decision both use it.
func (c *Controller) count(cfg *settings) (tally, []string) {
	t, unhealthy, _ := c.countAt(cfg, 0)
	return t, unhealthy
}

// expiring is a node whose window closes in a moment, with no change.
type expiring struct {
	name string
	in   time.Duration
}

// countAt is count, and also names the healthy eligible nodes whose window
// closes within horizon (0: none).
func (c *Controller) countAt(cfg *settings, horizon time.Duration) (tally, []string, []expiring) {
	window := cfg.UnhealthyAfter.Duration
	takenOver := c.takenOver()
	var t tally
	var unhealthy []string
	var soon []expiring
	c.health.each(window, func(name string, v nodeView) {
		if takenOver[name] {
			return
		}
		node := c.cachedNode(name)
		if !v.hasNode || node == nil {
			return // counted below if it has an open incident
		}
		if ok, _ := eligible(cfg, node); !ok {
			return
		}
		t.eligible++
		n := v.decideNode()
		bad, _ := decide.Unhealthy(n, window)
		switch {
		case bad:
			t.unhealthy++
			unhealthy = append(unhealthy, name)
		case v.hasLease && v.leaseStale >= window/2:
			t.suspect++
		case decide.NotReadyLeaseLive(n, window):
			t.notReadyLeaseLive++
		}
		if d := decide.UntilUnhealthy(n, window); !bad && d > 0 && d <= horizon {
			soon = append(soon, expiring{name, d})
		}
	})
	// A Node deleted mid-incident (its Lease perhaps collected with it) is
	// still a failed node until its incident ends: it counts, so that it is
	// not fenced past a storm another node's silence makes.
	for name := range c.nodesInPhases(v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseFailed, v1alpha1.PhasePaused) {
		if c.cachedNode(name) == nil {
			t.eligible++
			t.unhealthy++
		}
	}
	return t, unhealthy, soon
}

// scan publishes the count, reports storm transitions, and queues every
// unhealthy eligible node.
func (c *Controller) scan() {
	cfg := c.conf()
	t, unhealthy, soon := c.countAt(cfg, c.tick)
	c.counts.Store(&t)
	c.m.EligibleNodes.Set(float64(t.eligible))
	c.m.UnhealthyNodes.Set(float64(t.unhealthy))
	c.m.NotReadyLeaseRenewing.Set(float64(t.notReadyLeaseLive))
	blind := c.health.blind()
	if c.blindOn.Swap(blind) != blind {
		c.m.ViewBlind.Set(boolGauge(blind))
		c.log.Info("view blind: no Lease renewal of any node seen for half the window; nothing is remediated", "blind", blind)
	}
	c.updateStorm(cfg, t)
	for _, name := range unhealthy {
		c.queue.Add(name)
	}
	// A node whose window closes before the next tick is looked at the
	// moment it closes, not up to a tick later.
	for _, e := range soon {
		c.queue.AddAfter(e.name, e.in+time.Millisecond)
	}
	c.publishPhases()
}

func (c *Controller) updateStorm(cfg *settings, t tally) {
	limit, _ := cfg.MaxUnhealthyOf(t.eligible)
	on := t.unhealthy > limit
	if was := c.stormOn.Swap(on); was == on {
		return
	}
	if on {
		c.m.StormGuardActive.Set(1)
		c.m.StormGuardTrips.Inc()
		c.log.Info("storm guard on: nothing is remediated", "unhealthy", t.unhealthy, "eligible", t.eligible, "maxUnhealthy", limit)
	} else {
		c.m.StormGuardActive.Set(0)
		c.log.Info("storm guard off", "unhealthy", t.unhealthy, "eligible", t.eligible, "maxUnhealthy", limit)
	}
}

// publishPhases counts the open (not Recovered) Takeovers by phase.
func (c *Controller) publishPhases() {
	for _, p := range []v1alpha1.Phase{v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased,
		v1alpha1.PhaseWorkloadsReady, v1alpha1.PhaseFailed, v1alpha1.PhasePaused} {
		objs, _ := c.takeovers.GetIndexer().ByIndex(byPhase, string(p))
		c.m.OpenTakeovers.WithLabelValues(string(p)).Set(float64(len(objs)))
	}
}

// apiGuard counts consecutive failed API calls.
type apiGuard struct {
	threshold int32
	failures  atomic.Int32
}

func (g *apiGuard) healthy() bool { return g.failures.Load() < g.threshold }

func (c *Controller) apiResult(op string, err error) {
	// NotFound, Conflict and AlreadyExists are answers, not failures.
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		if c.api.failures.Swap(0) >= c.api.threshold {
			c.m.APIGuardActive.Set(0)
			c.log.Info("API guard off: API calls succeed again")
		}
		return
	}
	c.m.APIErrors.WithLabelValues(op).Inc()
	if n := c.api.failures.Add(1); n == c.api.threshold {
		c.m.APIGuardActive.Set(1)
		c.log.Info("API guard on: the controller's API calls are failing; nothing is remediated", "failures", n, "lastError", err.Error())
	}
}

// active counts other incidents in Fencing or Fenced.
func (c *Controller) active(except string) int {
	nodes := c.nodesInPhases(v1alpha1.PhaseFencing, v1alpha1.PhaseFenced)
	delete(nodes, except)
	return len(nodes)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
