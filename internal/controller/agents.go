package controller

import (
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/internal/config"
)

// agentTracker is the controller's view of the liberator agents
// (docs/design.md, "When the controller may release"): each node's agent
// Lease as last seen, when its renewals were seen on the controller's own
// monotonic clock, the acknowledgements, and Q: for every k, the last
// instant at which at least k agents were not fresh.
//
// An agent is fresh while its freshness anchor is under F old, F being the
// smallest API timeout of the agents, halved, less the largest margin of
// the agent classes: such an agent cannot answer its peers "no API". The
// anchor is when the controller saw a renewal that a later renewal of the
// agent confirms it knew had landed (agentlease.Renewed): a write can land
// after the agent gave up on it, and an agent measures its answers from
// the last renewal the API server answered, so a renewal seen but never
// confirmed proves nothing about what the agent tells its peers. A
// sighting counts only when it is on time: the agent's previous renewal
// was seen within two renew intervals and the margin before it, and
// neither a watch error nor a blind view came in between. A renewal
// delivered late (a relist after a broken watch, a backlog after a stall)
// would otherwise look recent. The
// count of agents not fresh only grows between Lease events, so recording
// it before each event is applied, and at each evaluation, makes Q exact.
type agentTracker struct {
	clock clock.PassiveClock
	// margin is the largest margin of the agent classes.
	margin time.Duration
	// blind reports whether the controller's view is blind (health.go):
	// while it is, no agent is fresh and no sighting counts.
	blind func() bool

	mu sync.Mutex
	// start is when the view began (the informer synced): nothing is known
	// fresh before it, so Q is never earlier.
	start  time.Time
	agents map[string]*agentState
	// minAPI is the smallest API timeout the parsed agent Leases publish.
	minAPI time.Duration
	// renewals are the freshness anchors, oldest first; those under F old
	// make their agents fresh. fresh counts the fresh agents.
	renewals []renewalSeen
	fresh    int
	// steps holds Q run-length encoded: k descending, at ascending; the
	// last instant at least k agents were not fresh is the at of the last
	// step whose k is k or more.
	steps []notFreshStep
}

type agentState struct {
	pub agentlease.Published
	// err says why the Lease does not parse: such an agent is never fresh.
	err error
	// renew is the renewTime fingerprint last seen.
	renew     string
	firstSeen time.Time
	// renewSeen is when renew was last seen to change; zero: never.
	renewSeen time.Time
	// sightings are the last renewals seen on time, with when, for the
	// confirmations that follow them. lastChange is when the previous
	// renewal was seen, for the on-time test; zero after a distrust.
	sightings  []sighting
	lastChange time.Time
	// anchor is when the controller saw the agent's latest renewal that a
	// later one confirmed; zero: none yet. fresh: it is under F old.
	anchor time.Time
	fresh  bool
	// ackName is the last acknowledgement seen, first seen at ackSeen.
	ackName string
	ackSeen time.Time
}

type sighting struct {
	renew string
	at    time.Time
}

// keepSightings is how many renewals seen are kept for confirmations: the
// agent confirms the one before its current write, so a few cover watch
// events that arrive together.
const keepSightings = 4

type renewalSeen struct {
	node string
	at   time.Time
}

type notFreshStep struct {
	k  int
	at time.Time
}

// agentView is one node's agent at one instant of the controller's clock.
type agentView struct {
	now time.Time
	pub agentlease.Published
	err error
	// lastRenewal is L: the last renewal seen, or when the Lease was
	// first seen.
	lastRenewal time.Time
	// q is Q for the node's published quorum.
	q                time.Time
	ackName          string
	ackSeen          time.Time
	renewSeen, start time.Time
}

func newAgentTracker(c clock.PassiveClock, margin time.Duration) *agentTracker {
	return &agentTracker{clock: c, margin: margin, start: c.Now(), agents: map[string]*agentState{}}
}

// synced marks the start of the view: the informer has listed the Leases.
func (t *agentTracker) synced() {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start = now
}

// freshFor is F; not positive means no agent is ever fresh.
func (t *agentTracker) freshFor() time.Duration {
	if t.minAPI <= 0 {
		return 0
	}
	return t.minAPI/2 - t.margin
}

// expire marks not fresh the agents whose anchor is F old at now.
func (t *agentTracker) expire(now time.Time) {
	f := t.freshFor()
	i := 0
	for ; i < len(t.renewals) && now.Sub(t.renewals[i].at) >= f; i++ {
		r := t.renewals[i]
		if a := t.agents[r.node]; a != nil && a.fresh && a.anchor.Equal(r.at) {
			a.fresh = false
			t.fresh--
		}
	}
	t.renewals = t.renewals[i:]
}

// record notes that at now, len(agents) - fresh agents are not fresh.
func (t *agentTracker) record(now time.Time) {
	if t.blind != nil && t.blind() {
		t.distrustLocked()
	}
	t.expire(now)
	n := len(t.agents) - t.fresh
	for len(t.steps) > 0 && t.steps[len(t.steps)-1].k <= n {
		t.steps = t.steps[:len(t.steps)-1]
	}
	if n > 0 {
		t.steps = append(t.steps, notFreshStep{k: n, at: now})
	}
}

// quorumNotFresh is Q for quorum k: never before the view began.
func (t *agentTracker) quorumNotFresh(k int) time.Time {
	i := sort.Search(len(t.steps), func(i int) bool { return t.steps[i].k < k })
	if i == 0 || t.steps[i-1].at.Before(t.start) {
		return t.start
	}
	return t.steps[i-1].at
}

// observe applies an added or updated agent Lease.
func (t *agentTracker) observe(l *coordinationv1.Lease) {
	node, ok := agentlease.NodeOf(l.Name)
	if !ok {
		return
	}
	pub, err := agentlease.Parse(l)
	renew := ""
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(now)
	a := t.agents[node]
	oldAPI := time.Duration(-1)
	switch {
	case a == nil:
		a = &agentState{renew: renew, firstSeen: now}
		t.agents[node] = a
	case a.err == nil:
		oldAPI = a.pub.APITimeout
	}
	a.pub, a.err = pub, err
	if pub.FenceAck != "" && pub.FenceAck != a.ackName {
		a.ackName, a.ackSeen = pub.FenceAck, now
	}
	newAPI := time.Duration(-1)
	if err == nil {
		newAPI = pub.APITimeout
	}
	t.apiTimeoutChanged(oldAPI, newAPI, now)
	if err != nil && a.fresh {
		a.fresh = false
		t.fresh--
	}
	if renew != a.renew {
		onTime := err == nil && !a.lastChange.IsZero() && now.Sub(a.lastChange) <= 2*pub.RenewInterval+t.margin
		a.renew, a.renewSeen, a.lastChange = renew, now, now
		if onTime {
			a.sightings = append(a.sightings, sighting{renew: renew, at: now})
			if len(a.sightings) > keepSightings {
				a.sightings = a.sightings[len(a.sightings)-keepSightings:]
			}
		}
	}
	if err == nil {
		t.confirm(node, a, pub.Renewed, now)
	}
}

// confirm moves a's anchor to when the controller saw the renewal the
// agent now confirms, and makes it fresh if that is under F ago.
func (t *agentTracker) confirm(node string, a *agentState, renewed string, now time.Time) {
	var at time.Time
	for _, s := range a.sightings {
		if s.renew == renewed && renewed != "" {
			at = s.at
		}
	}
	if at.IsZero() || !at.After(a.anchor) {
		return
	}
	a.anchor = at
	i := sort.Search(len(t.renewals), func(i int) bool { return t.renewals[i].at.After(at) })
	t.renewals = append(t.renewals, renewalSeen{})
	copy(t.renewals[i+1:], t.renewals[i:])
	t.renewals[i] = renewalSeen{node: node, at: at}
	if f := t.freshFor(); f > 0 && now.Sub(at) < f && !a.fresh {
		a.fresh = true
		t.fresh++
	}
}

// distrust forgets every freshness the controller knew: after a watch
// error on the agent Leases, events may arrive late.
func (t *agentTracker) distrust() {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(now)
	t.distrustLocked()
}

// distrustLocked makes every agent not fresh, with no anchor and no
// sighting that a later confirmation could use: an agent is fresh again
// only after two renewals seen on time. L (renewSeen) is kept.
func (t *agentTracker) distrustLocked() {
	for _, a := range t.agents {
		a.fresh, a.anchor, a.sightings, a.lastChange = false, time.Time{}, nil, time.Time{}
	}
	t.fresh, t.renewals = 0, t.renewals[:0]
}

// forget applies a deleted agent Lease: the agent leaves the membership,
// after the count it was part of has been recorded.
func (t *agentTracker) forget(l *coordinationv1.Lease) {
	node, ok := agentlease.NodeOf(l.Name)
	if !ok {
		return
	}
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(now)
	a := t.agents[node]
	if a == nil {
		return
	}
	if a.fresh {
		t.fresh--
	}
	delete(t.agents, node)
	if a.err == nil {
		t.apiTimeoutChanged(a.pub.APITimeout, -1, now)
	}
}

// apiTimeoutChanged keeps minAPI (and with it F) when one agent's API
// timeout goes from old to new (-1: none), and recounts the fresh agents
// when F changed.
func (t *agentTracker) apiTimeoutChanged(old, new time.Duration, now time.Time) {
	if old == new {
		return
	}
	before := t.minAPI
	switch {
	case new >= 0 && (t.minAPI <= 0 || new < t.minAPI):
		t.minAPI = new
	case old >= 0 && old == t.minAPI:
		t.minAPI = 0
		for _, a := range t.agents {
			if a.err == nil && (t.minAPI <= 0 || a.pub.APITimeout < t.minAPI) {
				t.minAPI = a.pub.APITimeout
			}
		}
	}
	if t.minAPI != before {
		t.recount(now)
	}
}

// recount rebuilds the fresh agents and their renewals for a new F.
func (t *agentTracker) recount(now time.Time) {
	f := t.freshFor()
	t.renewals, t.fresh = t.renewals[:0], 0
	for node, a := range t.agents {
		a.fresh = a.err == nil && !a.anchor.IsZero() && now.Sub(a.anchor) < f
		if a.fresh {
			t.fresh++
			t.renewals = append(t.renewals, renewalSeen{node: node, at: a.anchor})
		}
	}
	sort.Slice(t.renewals, func(i, j int) bool { return t.renewals[i].at.Before(t.renewals[j].at) })
}

// view evaluates node's agent now, recording the count first.
func (t *agentTracker) view(node string) (agentView, bool) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(now)
	a := t.agents[node]
	if a == nil {
		return agentView{now: now}, false
	}
	v := agentView{now: now, pub: a.pub, err: a.err, lastRenewal: a.firstSeen, ackName: a.ackName, ackSeen: a.ackSeen,
		renewSeen: a.renewSeen, start: t.start}
	if a.renewSeen.After(v.lastRenewal) {
		v.lastRenewal = a.renewSeen
	}
	k := a.pub.Quorum
	if a.err != nil || k < 1 {
		k = 1 // unknown quorum: the most conservative
	}
	v.q = t.quorumNotFresh(k)
	return v, true
}

// agentClasses reports whether any fence class uses the agent provider,
// and the largest margin among them.
func agentClasses(cfg *config.Config) (bool, time.Duration) {
	var found bool
	var margin time.Duration
	for i := range cfg.Fencing.Classes {
		if fc := &cfg.Fencing.Classes[i]; fc.Provider == config.ProviderAgent {
			found = true
			margin = max(margin, fc.SelfFenceOrDefault().Margin.Duration)
		}
	}
	return found, margin
}

// newAgentInformer watches the agent Leases (label agentlease.NodeLabel) in
// namespace ns.
func newAgentInformer(kube kubernetes.Interface, ns string) (informers.SharedInformerFactory, cache.SharedIndexInformer) {
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns), informers.WithTransform(slim),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = agentlease.NodeLabel }))
	return f, f.Coordination().V1().Leases().Informer()
}

// addAgentHandlers feeds the agent Lease events to the tracker and queues a
// node with an open incident (its agent's acknowledgement or renewal
// matters at once).
func (c *Controller) addAgentHandlers() error {
	enqueue := func(l *coordinationv1.Lease) {
		if node, ok := agentlease.NodeOf(l.Name); ok && c.openTakeover(node) != nil {
			c.queue.Add(node)
		}
	}
	_, err := c.agentLeases.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.onAgentLease(o, enqueue) },
		UpdateFunc: func(_, o any) { c.onAgentLease(o, enqueue) },
		DeleteFunc: func(o any) {
			if l, ok := tombstone(o).(*coordinationv1.Lease); ok {
				c.agents.forget(l)
				enqueue(l)
			}
		},
	})
	return err
}

func (c *Controller) onAgentLease(o any, enqueue func(*coordinationv1.Lease)) {
	if l, ok := o.(*coordinationv1.Lease); ok {
		c.agents.observe(l)
		enqueue(l)
	}
}
