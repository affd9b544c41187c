package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// FenceReadyCondition is the Node condition liberator publishes after
// checking the node's fence path. True means: if this node fails, liberator
// can take it over (its reason says how the node will be proven off); False
// means it cannot, and why.
const FenceReadyCondition corev1.NodeConditionType = "FenceReady"

// Reasons of the FenceReady condition.
const (
	// True: the provider reached the node's BMC and read its power state.
	ReasonFencePathOK = "FencePathOK"
	// True: provider wait; nothing to check (the node's watchdog is relied on).
	ReasonWaitProvider = "WaitProvider"
	// True: provider none with releaseUnproven; the node is released
	// without being proven off.
	ReasonNoFencing = "NoFencing"
	// True: provider none; the class has no automatic fence: the node is
	// released once an operator states that it is off (confirm-off).
	ReasonConfirmOffRequired = "ConfirmOffRequired"
	// True: the provider has no status to check.
	ReasonNotCheckable = "NotCheckable"
	// False: the provider's status failed (unreachable BMC, wrong
	// password, missing Secret or agent, bad option).
	ReasonFenceCheckFailed = "FenceCheckFailed"
	// False: the class's provider cannot be built from the configuration.
	ReasonFenceConfigInvalid = "FenceConfigInvalid"
	// False: no fence class matches the node.
	ReasonNoFenceClass = "NoFenceClass"
	// True: provider agent; the node's agent is armed, fresh, and its
	// bounds fit the class.
	ReasonAgentArmed = "AgentArmed"
	// False: provider agent; the node's agent is missing, not armed, not
	// fresh, or publishes bounds the class does not accept.
	ReasonAgentNotReady = "AgentNotReady"
)

// fenceCheckWorkers bounds the fence path checks run at once.
const fenceCheckWorkers = 8

// fenceCheckState is the fence check loop's memory.
type fenceCheckState struct {
	// defaultFencer is true when the controller builds its fencers itself
	// (Options.Fencer was nil), so a check round may share one read of each
	// credentials Secret among its nodes.
	defaultFencer bool
	mu            sync.Mutex
	// published holds the nodes with a liberator_fence_ready series.
	published map[string]bool
}

// runFenceChecks checks the fence path of every eligible node at once and
// then every fenceCheckInterval, until ctx ends. Run starts it on the
// leader.
func (c *Controller) runFenceChecks(ctx context.Context) {
	interval := c.conf().FenceCheckInterval.Duration
	if interval <= 0 {
		c.log.Info("fence path checks are off (fenceCheckInterval 0)")
		return
	}
	t := c.clock.NewTicker(interval)
	defer t.Stop()
	for {
		c.checkFences(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// fenceVerdict is one node's check result.
type fenceVerdict struct {
	ready           bool
	reason, message string
}

// checkFences runs one round: every eligible node's fence path is checked,
// and the result published as the node's FenceReady condition, the
// liberator_fence_ready metric, and an event when it changes.
func (c *Controller) checkFences(ctx context.Context) {
	cfg := c.conf()
	ctx = withSettings(ctx, cfg)
	newFencer := c.fencer
	if c.fenceChecks.defaultFencer {
		newFencer = c.defaultFencer(memoSecrets(c.secretGetter()))
	}
	var nodes []*corev1.Node
	for _, o := range c.nodes.GetStore().List() {
		n := o.(*corev1.Node)
		if ok, _ := eligible(cfg, n); !ok {
			continue
		}
		if t := c.openTakeover(n.Name); t != nil && t.Status.Phase == v1alpha1.PhaseFencing {
			continue // its BMC is busy with the fence itself
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	work := make(chan *corev1.Node)
	var wg sync.WaitGroup
	for range min(fenceCheckWorkers, len(nodes)) {
		wg.Go(func() {
			for n := range work {
				v := c.checkFence(ctx, n, newFencer)
				if ctx.Err() != nil {
					return // cancelled: a check cut short says nothing
				}
				c.publishFenceReady(ctx, n, v)
			}
		})
	}
	seen := map[string]bool{}
feed:
	for _, n := range nodes {
		seen[n.Name] = true
		select {
		case work <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	c.fenceChecks.mu.Lock()
	defer c.fenceChecks.mu.Unlock()
	for name := range c.fenceChecks.published {
		if !seen[name] && c.cachedNode(name) == nil {
			c.m.FenceReady.DeleteLabelValues(name)
			delete(c.fenceChecks.published, name)
		}
	}
}

// checkFence checks one node's fence path.
func (c *Controller) checkFence(ctx context.Context, n *corev1.Node, newFencer func(config.FenceClass) (fence.Fencer, error)) fenceVerdict {
	fc := fenceClass(c.confIn(ctx), n)
	switch {
	case fc == nil:
		return fenceVerdict{false, ReasonNoFenceClass, "no fence class in the configuration matches this node: if it fails it cannot be proven off and is never released"}
	case fc.Provider == config.ProviderNone && !fc.ReleaseUnproven:
		return fenceVerdict{true, ReasonConfirmOffRequired, fmt.Sprintf("fence class %s uses provider none, which has no automatic fence: if this node fails it is released only once an operator who has made sure that it is off runs liberator confirm-off %s", fc.Name, n.Name)}
	case fc.Provider == config.ProviderNone:
		return fenceVerdict{true, ReasonNoFencing, fmt.Sprintf("fence class %s uses provider none: if this node fails it is released without being proven off, as the policy allows", fc.Name)}
	case fc.Provider == config.ProviderWait:
		safe := ""
		if fc.Wait != nil {
			safe = " " + fc.Wait.SafeTime.Duration.String()
		}
		return fenceVerdict{true, ReasonWaitProvider, fmt.Sprintf("fence class %s uses provider wait: a failed node counts as fenced%s after detection, on the assumption that its watchdog has reset it; there is no fence path to check", fc.Name, safe)}
	case fc.Provider == config.ProviderAgent:
		return c.checkAgent(ctx, n.Name, fc)
	}
	f, err := newFencer(*fc)
	if err != nil {
		c.m.FenceChecks.WithLabelValues(fc.Provider, "failed").Inc()
		return fenceVerdict{false, ReasonFenceConfigInvalid, err.Error()}
	}
	m, ok := f.(fence.Monitor)
	if !ok {
		return fenceVerdict{true, ReasonNotCheckable, fmt.Sprintf("provider %s (class %s) has no status to check", fc.Provider, fc.Name)}
	}
	cctx, cancel := context.WithTimeout(ctx, fc.Timeout.Duration)
	defer cancel()
	start := c.clock.Now()
	on, err := m.Status(cctx, fence.Target{Node: n.Name, Class: *fc, Now: start})
	c.m.FenceCheckSeconds.WithLabelValues(fc.Provider).Observe(c.clock.Since(start).Seconds())
	if err != nil {
		c.m.FenceChecks.WithLabelValues(fc.Provider, "failed").Inc()
		return fenceVerdict{false, ReasonFenceCheckFailed, fmt.Sprintf("fence path check with provider %s (class %s) failed: %v", fc.Provider, fc.Name, err)}
	}
	c.m.FenceChecks.WithLabelValues(fc.Provider, "ok").Inc()
	power := "on"
	if !on {
		power = "off"
	}
	return fenceVerdict{true, ReasonFencePathOK, fmt.Sprintf("provider %s (class %s) reached the node's power control: power is %s", fc.Provider, fc.Name, power)}
}

// publishFenceReady sets the node's FenceReady condition (only when it
// changed, so a steady cluster costs no writes), the metric, and an event
// when the status or reason changed (or, on the first check, when the path
// does not work).
func (c *Controller) publishFenceReady(ctx context.Context, n *corev1.Node, v fenceVerdict) {
	val := 0.0
	if v.ready {
		val = 1
	}
	c.m.FenceReady.WithLabelValues(n.Name).Set(val)
	c.fenceChecks.mu.Lock()
	if c.fenceChecks.published == nil {
		c.fenceChecks.published = map[string]bool{}
	}
	c.fenceChecks.published[n.Name] = true
	c.fenceChecks.mu.Unlock()

	status := corev1.ConditionFalse
	if v.ready {
		status = corev1.ConditionTrue
	}
	msg := v.message
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	var old *corev1.NodeCondition
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == FenceReadyCondition {
			old = &n.Status.Conditions[i]
		}
	}
	if old != nil && old.Status == status && old.Reason == v.reason && old.Message == msg {
		return
	}
	now := metav1.NewTime(c.clock.Now())
	cond := corev1.NodeCondition{Type: FenceReadyCondition, Status: status, Reason: v.reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	if old != nil && old.Status == status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if err != nil {
		return
	}
	_, err = c.kube.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	c.apiResult("patchNodeStatus", err)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			c.log.Error(err, "cannot set the FenceReady condition", "node", n.Name)
		}
		return
	}
	if old != nil && old.Status == status && old.Reason == v.reason {
		return // only the message changed: no event
	}
	if old == nil && v.ready {
		return // first check of a working path: the condition says it, no event
	}
	if v.ready {
		c.log.Info("fence path ready", "node", n.Name, "reason", v.reason, "message", msg)
		c.recorder.Event(nodeRef(n.Name, n.UID), corev1.EventTypeNormal, decide.EventFenceReady, msg)
	} else {
		c.log.Info("fence path NOT ready", "node", n.Name, "reason", v.reason, "message", msg)
		c.recorder.Event(nodeRef(n.Name, n.UID), corev1.EventTypeWarning, decide.EventFenceNotReady, msg)
	}
}
