package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
)

// agentFencer fences a node through its liberator agent (provider agent,
// docs/design.md "Self-fencing"): it asks the agent to fence on its Lease,
// lets decide.AgentFenced say when the node is proven reset (acknowledged,
// or cut off for its isolation bound), and re-reads the agent Lease live
// before it says so.
type agentFencer struct {
	c     *Controller
	class config.FenceClass
}

// agentFencer builds the agent provider's Fencer for class fc.
func (c *Controller) agentFencer(fc config.FenceClass) (fence.Fencer, error) {
	if c.agents == nil {
		return nil, fmt.Errorf("fence class %q: the controller does not watch the agent Leases (it started with no agent class)", fc.Name)
	}
	return &agentFencer{c: c, class: fc}, nil
}

// Fence asks the node's agent to fence (once), and reports Done once the
// node is proven reset; until then RetryAfter says when that will be.
func (a *agentFencer) Fence(ctx context.Context, t fence.Target) (fence.Result, error) {
	c := a.c
	if t.Takeover == "" {
		return fence.Result{}, errors.New("the agent provider needs the incident's Takeover name for its fence request")
	}
	v, err := c.agentView(t.Node)
	if err != nil {
		return fence.Result{}, err
	}
	if v.pub.FenceRequest != t.Takeover {
		if err := c.patchFenceRequest(ctx, t.Node, &t.Takeover); err != nil {
			return fence.Result{}, err
		}
	}
	sf := a.class.SelfFenceOrDefault()
	in := decide.AgentFence{Published: v.pub, LastRenewal: v.lastRenewal, QuorumNotFresh: v.q,
		Margin: sf.Margin.Duration, MaxIsolation: sf.MaxIsolation.Duration}
	if v.ackName == t.Takeover {
		in.AckSeen = v.ackSeen
	}
	d, err := decide.AgentFenced(in, v.now)
	if err != nil {
		return fence.Result{}, err
	}
	if !d.Done {
		return fence.Result{RetryAfter: d.RetryAfter, Output: d.Message}, nil
	}
	if wait, why, err := c.agentLive(ctx, t.Node, v, d); err != nil || wait > 0 {
		return fence.Result{RetryAfter: wait, Output: why}, err
	}
	// The node is reset: the request is withdrawn, so that its agent does
	// not fence it again when it returns.
	if err := c.patchFenceRequest(ctx, t.Node, nil); err != nil {
		return fence.Result{}, fmt.Errorf("the node is fenced (%s), but its fence request cannot be withdrawn: %w", d.Message, err)
	}
	return fence.Result{Done: true, PowerOff: true, Output: d.Message}, nil
}

// agentView evaluates node's agent now; an error says why there is none.
func (c *Controller) agentView(node string) (agentView, error) {
	if c.agents == nil {
		return agentView{}, errors.New("the controller does not watch the agent Leases (it started with no agent class)")
	}
	v, ok := c.agents.view(node)
	if !ok {
		return v, fmt.Errorf("no agent Lease %s/%s seen: the liberator agent does not run on %s (or its Lease lacks the label %s)",
			c.secretNamespace(), agentlease.LeaseName(node), node, agentlease.NodeLabel)
	}
	return v, v.err
}

// agentLive re-reads node's agent Lease from the API server right before
// Done. A new boot ID proves the reset by itself. Otherwise a Lease gone or
// no longer armed is no fence (error), and, unless the acknowledgement
// decided, a renewal since the one the bound counts from, or other
// published bounds, mean the agent is alive and reaching the API: not done
// yet, look again after its check interval.
func (c *Controller) agentLive(ctx context.Context, node string, v agentView, d decide.AgentVerdict) (time.Duration, string, error) {
	ns, name := c.secretNamespace(), agentlease.LeaseName(node)
	l, err := c.kube.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	c.apiResult("getAgentLease", err)
	switch {
	case apierrors.IsNotFound(err):
		return 0, "", fmt.Errorf("agent Lease %s/%s is gone (read live): the agent's state is unknown, so it is no fence", ns, name)
	case err != nil:
		return 0, "", fmt.Errorf("cannot re-read agent Lease %s/%s live: %w", ns, name, err)
	}
	live, err := agentlease.Parse(l)
	if err != nil {
		return 0, "", err
	}
	if v.pub.BootID != "" && live.BootID != "" && live.BootID != v.pub.BootID {
		return 0, "", nil // the node has booted since: its old containers are gone
	}
	if !live.Armed {
		return 0, "", fmt.Errorf("agent on %s publishes armed: false (read live): it stopped cleanly, so its watchdog resets nothing", node)
	}
	if d.Acked {
		return 0, "", nil
	}
	if live.RenewTime != v.pub.RenewTime || live.Bounds != v.pub.Bounds || live.Quorum != v.pub.Quorum {
		return v.pub.CheckInterval, fmt.Sprintf("agent on %s renewed its Lease since the renewal the bound counts from (read live: renewTime %s, seen %s): it reaches the API; waiting for its acknowledgement or its silence",
			node, live.RenewTime, v.pub.RenewTime), nil
	}
	return 0, "", nil
}

// patchFenceRequest sets node's fence request to the Takeover name, or
// withdraws it (nil), with a merge patch of that one annotation.
func (c *Controller) patchFenceRequest(ctx context.Context, node string, takeover *string) error {
	ns, name := c.secretNamespace(), agentlease.LeaseName(node)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{agentlease.FenceRequest: takeover}}})
	if err != nil {
		return err
	}
	_, err = c.kube.CoordinationV1().Leases(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	c.apiResult("patchAgentLease", err)
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("agent Lease %s/%s not found: the liberator agent does not run on %s", ns, name, node)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("RBAC forbids patching agent Lease %s/%s (the controller needs patch on leases in %s; apply config/rbac)", ns, name, ns)
	}
	return fmt.Errorf("cannot write the fence request on agent Lease %s/%s: %w", ns, name, err)
}

// checkAgent is the fence check of a node of an agent class: FenceReady is
// True only while its agent is armed, fresh, and publishes usable bounds
// within the class's maxIsolation. A fence request left by an incident
// that is no longer open is withdrawn.
func (c *Controller) checkAgent(ctx context.Context, node string, fc *config.FenceClass) fenceVerdict {
	v, err := c.agentView(node)
	if err == nil {
		c.withdrawStaleRequest(ctx, node, v)
		err = agentReady(v, fc)
	}
	if err != nil {
		c.m.FenceChecks.WithLabelValues(fc.Provider, "failed").Inc()
		return fenceVerdict{false, ReasonAgentNotReady, fmt.Sprintf("%v (class %s, provider agent)", err, fc.Name)}
	}
	c.m.FenceChecks.WithLabelValues(fc.Provider, "ok").Inc()
	sf := fc.SelfFenceOrDefault()
	return fenceVerdict{true, ReasonAgentArmed, fmt.Sprintf("agent on %s is armed: cut off, its node is reset within %s + margin %s of its last renewal; on request, within its watchdog timeout %s + margin %s (class %s)",
		node, v.pub.Isolation(), sf.Margin.Duration, v.pub.WatchdogTimeout, sf.Margin.Duration, fc.Name)}
}

// agentReady says why the agent in v is no fence for class fc now, or nil.
func agentReady(v agentView, fc *config.FenceClass) error {
	sf := fc.SelfFenceOrDefault()
	margin := sf.Margin.Duration
	if err := decide.AgentFenceable(v.pub, margin, sf.MaxIsolation.Duration); err != nil {
		return err
	}
	fresh := v.pub.APITimeout/2 - margin
	if age := v.now.Sub(v.lastRenewal); age >= fresh {
		return fmt.Errorf("agent on %s is not fresh: no renewal of its Lease seen for %s (fresh means within %s, half its API timeout less the margin)",
			v.pub.Node, age.Round(100*time.Millisecond), fresh)
	}
	return nil
}

// withdrawStaleRequest removes a fence request whose incident is no longer
// open (it was aborted or closed before the agent saw it), so that the
// agent does not fence a healthy node later.
func (c *Controller) withdrawStaleRequest(ctx context.Context, node string, v agentView) {
	req := v.pub.FenceRequest
	if req == "" {
		return
	}
	if tk := c.openTakeover(node); tk != nil && tk.Name == req {
		return
	}
	if err := c.patchFenceRequest(ctx, node, nil); err != nil {
		c.log.Error(err, "cannot withdraw a stale fence request", "node", node, "takeover", req)
		return
	}
	c.log.Info("stale fence request withdrawn: its incident is not open", "node", node, "takeover", req)
}
