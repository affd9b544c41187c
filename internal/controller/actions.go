package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/release"
)

// soon is the requeue delay after a step that moved an incident on.
const soon = time.Millisecond

// open records a new incident: a Takeover in phase Detected holding the
// heartbeat seen at detection.
func (c *Controller) open(ctx context.Context, node *corev1.Node, d decide.Decision) (time.Duration, error) {
	existing, err := c.liveOpenTakeover(ctx, node.Name)
	if err != nil {
		return 0, err
	}
	if existing != nil {
		return time.Second, nil // the cache has not caught up with it yet
	}
	var lease = c.cachedLease(node.Name)
	now := c.clock.Now()
	fc := c.fenceClass(node)
	provider := ""
	if fc != nil {
		provider = fc.Provider
	}
	t := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: takeoverName(node.Name, now)},
		Spec: v1alpha1.TakeoverSpec{
			NodeName: node.Name, NodeUID: string(node.UID),
			Strategy: v1alpha1.Strategy(c.cfg.ReleaseStrategy), FenceProvider: provider, DryRun: c.cfg.DryRun,
		},
	}
	if len(validation.IsValidLabelValue(node.Name)) == 0 {
		t.Labels = map[string]string{NodeLabel: node.Name}
	}
	err = c.client.Create(ctx, t)
	c.apiResult("createTakeover", err)
	if err != nil {
		return 0, fmt.Errorf("create Takeover for node %s: %w", node.Name, err)
	}
	t.Status.Heartbeat = release.Heartbeat(node, lease)
	t.Status.BootID = node.Status.NodeInfo.BootID
	if err := c.setPhase(ctx, t, v1alpha1.PhaseDetected, d.Reason, d.Message); err != nil {
		return 0, err
	}
	c.log.Info("node unhealthy: takeover opened", "node", node.Name, "takeover", t.Name, "reason", d.Reason, "message", d.Message)
	c.recorder.Event(nodeRef(node.Name), corev1.EventTypeWarning, "TakeoverDetected", fmt.Sprintf("%s; Takeover %s opened", d.Message, t.Name))
	return soon, nil
}

func (c *Controller) cachedLease(name string) *coordinationv1.Lease {
	o, ok, _ := c.leases.GetStore().GetByKey(release.NodeLeaseNamespace + "/" + name)
	if !ok {
		return nil
	}
	return o.(*coordinationv1.Lease)
}

// pause holds the incident for the decision's reason.
func (c *Controller) pause(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision) (time.Duration, error) {
	if t.Status.Phase != v1alpha1.PhasePaused || t.Status.Reason != d.Reason {
		if err := c.setPhase(ctx, t, v1alpha1.PhasePaused, d.Reason, d.Message); err != nil {
			return 0, err
		}
		c.log.Info("takeover paused", "node", t.Spec.NodeName, "takeover", t.Name, "reason", d.Reason, "message", d.Message)
		c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeWarning, d.Reason, d.Message)
	}
	return 5 * time.Second, nil
}

// reportDryRun records what would be done, and does nothing.
func (c *Controller) reportDryRun(ctx context.Context, t *v1alpha1.Takeover, node *corev1.Node) (time.Duration, error) {
	var pods []string
	objs, _ := c.pods.GetIndexer().ByIndex(byNode, node.Name)
	for _, o := range objs {
		if p := o.(*podInfo); !p.BelongsToNode {
			pods = append(pods, p.key())
		}
	}
	sort.Strings(pods)
	provider := "none matching (unfenceable: would not be released)"
	if fc := c.fenceClass(node); fc != nil {
		provider = fmt.Sprintf("%s (class %s)", fc.Provider, fc.Name)
	}
	msg := fmt.Sprintf("dry run: would fence with %s, release with %s, and move %d pods [%s] and VolumeAttachments [%s]",
		provider, t.Spec.Strategy, len(pods), strings.Join(pods, ", "), strings.Join(c.cachedVANames(node.Name), ", "))
	if err := c.setPhase(ctx, t, v1alpha1.PhasePaused, decide.ReasonDryRun, msg); err != nil {
		return 0, err
	}
	c.log.Info("dry run", "node", node.Name, "takeover", t.Name, "message", msg)
	c.recorder.Event(nodeRef(node.Name), corev1.EventTypeNormal, "DryRun", msg)
	return 0, nil
}

func (c *Controller) cachedVANames(node string) []string {
	objs, _ := c.vas.GetIndexer().ByIndex(byNode, node)
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.(*storagev1.VolumeAttachment).Name)
	}
	sort.Strings(names)
	return names
}

// fence proves the node off through its class's provider.
func (c *Controller) fence(ctx context.Context, t *v1alpha1.Takeover, node *corev1.Node) (time.Duration, error) {
	fc := c.fenceClass(node)
	if fc == nil {
		return 0, errors.New("no fence class for node") // decide never fences such a node
	}
	if t.Status.Phase != v1alpha1.PhaseFencing {
		t.Status.FenceAttempts++
		t.Status.NextRetryTime = nil
		if err := c.setPhase(ctx, t, v1alpha1.PhaseFencing, "FenceStarted", fmt.Sprintf("fencing with provider %s (class %s), attempt %d", fc.Provider, fc.Name, t.Status.FenceAttempts)); err != nil {
			return 0, err
		}
		c.recorder.Event(nodeRef(node.Name), corev1.EventTypeNormal, "Fencing", fmt.Sprintf("fencing with provider %s (class %s)", fc.Provider, fc.Name))
	}
	f, err := c.fencer(*fc)
	if err != nil {
		return c.fenceFailed(ctx, t, fc, err)
	}
	detected := t.CreationTimestamp.Time
	if d := t.PhaseTime(v1alpha1.PhaseDetected); d != nil {
		detected = d.Time
	}
	fctx, cancel := context.WithTimeout(ctx, fc.Timeout.Duration)
	defer cancel()
	start := c.clock.Now()
	res, err := f.Fence(fctx, fence.Target{Node: node.Name, Class: *fc, DetectedAt: detected, Now: start})
	c.m.FenceSeconds.WithLabelValues(fc.Provider).Observe(c.clock.Since(start).Seconds())
	if err != nil {
		c.m.FenceCalls.WithLabelValues(fc.Provider, "error").Inc()
		return c.fenceFailed(ctx, t, fc, err)
	}
	if !res.Done {
		c.m.FenceCalls.WithLabelValues(fc.Provider, "pending").Inc()
		return res.RetryAfter, nil
	}
	c.m.FenceCalls.WithLabelValues(fc.Provider, "success").Inc()
	t.Status.FenceOutput = res.Output
	t.Status.RebootRequired = res.PowerOff || fc.Provider != config.ProviderNone
	reason, msg := "Fenced", fmt.Sprintf("fenced by provider %s (class %s): %s", fc.Provider, fc.Name, res.Output)
	if res.Unsafe {
		reason = "FencedUnsafe"
		msg = fmt.Sprintf("NOT fenced: class %s uses provider none, so the node was not proven off; the policy accepts this for its class", fc.Name)
	}
	if err := c.setPhase(ctx, t, v1alpha1.PhaseFenced, reason, msg); err != nil {
		return 0, err
	}
	evType := corev1.EventTypeNormal
	if res.Unsafe {
		evType = corev1.EventTypeWarning
	}
	c.log.Info("node fenced", "node", node.Name, "takeover", t.Name, "provider", fc.Provider, "unsafe", res.Unsafe)
	c.recorder.Event(nodeRef(node.Name), evType, reason, msg)
	return soon, nil
}

func (c *Controller) fenceFailed(ctx context.Context, t *v1alpha1.Takeover, fc *config.FenceClass, ferr error) (time.Duration, error) {
	backoff := c.backoff(int(t.Status.FenceAttempts))
	next := metav1.NewTime(c.clock.Now().Add(backoff))
	t.Status.NextRetryTime = &next
	msg := fmt.Sprintf("fencing with provider %s (class %s) failed: %v; nothing is released; retry in %s", fc.Provider, fc.Name, ferr, backoff)
	if err := c.setPhase(ctx, t, v1alpha1.PhaseFailed, "FenceFailed", msg); err != nil {
		return 0, err
	}
	c.log.Info("fencing failed", "node", t.Spec.NodeName, "takeover", t.Name, "error", ferr.Error(), "retryIn", backoff)
	c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeWarning, "FenceFailed", msg)
	if n := c.cachedNode(t.Spec.NodeName); n != nil {
		// The fence path is broken now: say so at once, not at the next check.
		c.publishFenceReady(ctx, n, fenceVerdict{false, ReasonFenceCheckFailed, msg})
	}
	return backoff, nil
}

func (c *Controller) backoff(attempts int) time.Duration {
	d := c.cfg.Retry.InitialBackoff.Duration
	for i := 1; i < attempts && d < c.cfg.Retry.MaxBackoff.Duration; i++ {
		d *= 2
	}
	return min(d, c.cfg.Retry.MaxBackoff.Duration)
}

// release frees a fenced node's workloads. Right before the first
// destructive call it re-reads the Node and Lease from the API server and
// stops if a heartbeat arrived (DESIGN.md rule 2).
func (c *Controller) release(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	name := t.Spec.NodeName
	live, err := release.Live(ctx, c.kube, name, t.Status.Heartbeat)
	switch {
	case errors.Is(err, release.ErrHeartbeat):
		return c.abort(ctx, t, decide.Decision{Reason: decide.ReasonHeartbeatResumed, Message: err.Error()})
	case apierrors.IsNotFound(err):
		return c.abort(ctx, t, decide.Decision{Reason: decide.ReasonNodeGoneBeforeFence, Message: "the Node was deleted before release"})
	case err != nil:
		c.apiResult("liveRead", err)
		return 0, fmt.Errorf("live re-read of node %s: %w", name, err)
	}
	if string(live.UID) != t.Spec.NodeUID {
		return c.abort(ctx, t, decide.Decision{Reason: decide.ReasonNodeGoneBeforeFence, Message: "the Node was replaced before release"})
	}
	pods, err := release.PodsOnNode(ctx, c.kube, name)
	c.apiResult("listPods", err)
	if err != nil {
		return 0, err
	}
	// Record the pods before touching them, so a step cut short and resumed
	// by another replica still knows what it moved.
	if added := recordPods(t, pods); added {
		if err := c.writeStatus(ctx, t); err != nil {
			return 0, err
		}
	}
	switch t.Spec.Strategy {
	case v1alpha1.StrategyOutOfServiceTaint:
		err = release.Taint(ctx, c.kube, live, release.OutOfServiceTaint)
	case v1alpha1.StrategyForceDelete:
		err = release.Taint(ctx, c.kube, live, release.FencedTaint)
	case v1alpha1.StrategyDeleteNode:
		err = release.DeleteNode(ctx, c.kube, live)
	}
	c.apiResult("releaseNode", err)
	if apierrors.IsConflict(err) {
		// The Node changed between the live read and the call: look again.
		return soon, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s on node %s: %w", t.Spec.Strategy, name, err)
	}
	for i := range pods {
		err := release.ForceDeletePod(ctx, c.kube, &pods[i])
		c.apiResult("deletePod", err)
		if err != nil {
			return 0, fmt.Errorf("force-delete pod %s/%s: %w", pods[i].Namespace, pods[i].Name, err)
		}
	}
	vas, err := release.DeleteVolumeAttachments(ctx, c.kube, c.cachedVAs(name))
	c.apiResult("deleteVolumeAttachment", err)
	if err != nil {
		return 0, err
	}
	t.Status.ReleasedVolumeAttachments = appendNew(t.Status.ReleasedVolumeAttachments, vas...)
	msg := fmt.Sprintf("released by %s: pods force-deleted: %d, VolumeAttachments deleted: %d", t.Spec.Strategy, len(pods), len(vas))
	if err := c.setPhase(ctx, t, v1alpha1.PhaseReleased, "Released", msg); err != nil {
		return 0, err
	}
	c.log.Info("node released", "node", name, "takeover", t.Name, "strategy", t.Spec.Strategy, "pods", len(pods), "volumeAttachments", len(vas))
	c.recorder.Event(nodeRef(name), corev1.EventTypeNormal, "Released", msg)
	for _, p := range t.Status.MovedPods {
		if ref := ownerRef(t, p); ref != nil {
			c.recorder.Eventf(ref, corev1.EventTypeNormal, "PodReleased", "pod %s released from failed node %s (Takeover %s)", p.Name, name, t.Name)
		}
	}
	return soon, nil
}

func (c *Controller) cachedVAs(node string) []*storagev1.VolumeAttachment {
	objs, _ := c.vas.GetIndexer().ByIndex(byNode, node)
	out := make([]*storagev1.VolumeAttachment, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*storagev1.VolumeAttachment))
	}
	return out
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

// recordPods adds the pods not yet in t's MovedPods; it reports whether any
// were added.
func recordPods(t *v1alpha1.Takeover, pods []corev1.Pod) bool {
	added := false
	for i := range pods {
		d := release.Describe(&pods[i])
		known := false
		for _, m := range t.Status.MovedPods {
			known = known || (m.Namespace == d.Namespace && m.Name == d.Name)
		}
		if known {
			continue
		}
		t.Status.MovedPods = append(t.Status.MovedPods, v1alpha1.MovedPod{
			Namespace: d.Namespace, Name: d.Name, UID: string(d.UID),
			OwnerKind: d.OwnerKind, OwnerName: d.OwnerName, OwnerUID: string(d.OwnerUID), OwnerAPIVersion: d.OwnerAPIVersion,
		})
		added = true
	}
	return added
}

func ownerRef(t *v1alpha1.Takeover, p v1alpha1.MovedPod) *corev1.ObjectReference {
	if p.OwnerKind == "" {
		return nil
	}
	return &corev1.ObjectReference{Kind: p.OwnerKind, APIVersion: p.OwnerAPIVersion, Namespace: p.Namespace, Name: p.OwnerName, UID: types.UID(p.OwnerUID)}
}

// track records, for each released pod with an owner, the replacement that
// became Ready on another node.
func (c *Controller) track(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	changed, waiting := false, []string{}
	claimed := map[string]bool{}
	for _, m := range t.Status.MovedPods {
		if m.ReplacementName != "" {
			claimed[m.Namespace+"/"+m.ReplacementName] = true
		}
	}
	now := metav1.NewMicroTime(c.clock.Now())
	for i := range t.Status.MovedPods {
		m := &t.Status.MovedPods[i]
		if m.OwnerKind == "" || m.ReadyTime != nil {
			continue
		}
		if r := c.replacement(t.Spec.NodeName, m, claimed); r != nil {
			m.ReplacementName, m.ReplacementNode, m.ReadyTime = r.Name, r.NodeName, &now
			claimed[r.key()] = true
			changed = true
			c.log.Info("workload ready elsewhere", "node", t.Spec.NodeName, "pod", m.Namespace+"/"+m.Name, "replacement", r.Name, "on", r.NodeName)
			if ref := ownerRef(t, *m); ref != nil {
				c.recorder.Eventf(ref, corev1.EventTypeNormal, "PodReady", "pod %s Ready on node %s after takeover of node %s", r.Name, r.NodeName, t.Spec.NodeName)
			}
			continue
		}
		waiting = append(waiting, m.Namespace+"/"+m.Name)
	}
	if len(waiting) == 0 {
		msg := fmt.Sprintf("released workloads Ready on other nodes: %d", len(t.Status.MovedPods))
		if err := c.setPhase(ctx, t, v1alpha1.PhaseWorkloadsReady, decide.ReasonWorkloadsReady, msg); err != nil {
			return 0, err
		}
		c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeNormal, decide.ReasonWorkloadsReady, msg)
		c.powerOn(ctx, t)
		return soon, nil
	}
	if rel := t.PhaseTime(v1alpha1.PhaseReleased); rel != nil && c.clock.Since(rel.Time) > c.cfg.WorkloadTimeout.Duration {
		msg := fmt.Sprintf("workloadTimeout %s passed with %d pods not Ready elsewhere: %s", c.cfg.WorkloadTimeout.Duration, len(waiting), strings.Join(waiting, ", "))
		if err := c.setPhase(ctx, t, v1alpha1.PhaseWorkloadsReady, "WorkloadTimeout", msg); err != nil {
			return 0, err
		}
		c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeWarning, "WorkloadTimeout", msg)
		c.powerOn(ctx, t)
		return soon, nil
	}
	if changed {
		if err := c.writeStatus(ctx, t); err != nil {
			return 0, err
		}
	}
	return 5 * time.Second, nil
}

// powerOn powers a fenced node back on once its workloads are elsewhere,
// where its class asks for it (powerOnAfterTakeover). A failure is recorded
// on the Takeover and leaves the node off, which is safe.
func (c *Controller) powerOn(ctx context.Context, t *v1alpha1.Takeover) {
	if _, err := c.powerOnAfterTakeover(ctx, t); err != nil {
		c.log.Info("power-on after takeover failed; the node stays off", "node", t.Spec.NodeName, "takeover", t.Name, "error", err.Error())
	}
}

// replacement finds the Ready pod that took over m on another node.
func (c *Controller) replacement(failed string, m *v1alpha1.MovedPod, claimed map[string]bool) *podInfo {
	ok := func(p *podInfo) bool {
		return string(p.UID) != m.UID && p.NodeName != "" && p.NodeName != failed &&
			p.DeletionTimestamp == nil && p.Ready && !claimed[p.key()]
	}
	if m.OwnerKind == "StatefulSet" {
		o, exists, _ := c.pods.GetStore().GetByKey(m.Namespace + "/" + m.Name)
		if exists && ok(o.(*podInfo)) {
			return o.(*podInfo)
		}
		return nil
	}
	objs, _ := c.pods.GetIndexer().ByIndex(byOwner, m.OwnerUID)
	var best *podInfo
	for _, o := range objs {
		p := o.(*podInfo)
		if ok(p) && (best == nil || p.CreationTimestamp.Before(&best.CreationTimestamp)) {
			best = p
		}
	}
	return best
}

// recover removes what liberator added to the returned node and closes the
// incident.
func (c *Controller) recover(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	if t.Spec.Strategy != v1alpha1.StrategyDeleteNode { // a re-registered Node carries no taint of ours
		err := release.Untaint(ctx, c.kube, t.Spec.NodeName)
		c.apiResult("untaint", err)
		if apierrors.IsConflict(err) {
			return soon, nil
		}
		if err != nil {
			return 0, fmt.Errorf("remove liberator's taints from %s: %w", t.Spec.NodeName, err)
		}
	}
	msg := "the node is back (healthy, and rebooted where fencing required it); liberator's taint is removed"
	if err := c.setPhase(ctx, t, v1alpha1.PhaseRecovered, decide.ReasonNodeRecovered, msg); err != nil {
		return 0, err
	}
	c.log.Info("node recovered: takeover closed", "node", t.Spec.NodeName, "takeover", t.Name)
	c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeNormal, "Recovered", msg)
	return 0, nil
}

// abort closes an incident whose node came back (or went away) before
// anything was released.
func (c *Controller) abort(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision) (time.Duration, error) {
	if err := c.setPhase(ctx, t, v1alpha1.PhaseRecovered, d.Reason, d.Message); err != nil {
		return 0, err
	}
	c.log.Info("takeover closed before release", "node", t.Spec.NodeName, "takeover", t.Name, "reason", d.Reason, "message", d.Message)
	c.recorder.Event(nodeRef(t.Spec.NodeName), corev1.EventTypeNormal, "TakeoverAborted", d.Message)
	return 0, nil
}
