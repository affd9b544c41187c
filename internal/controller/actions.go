package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

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
	cfg := c.confIn(ctx)
	fc := fenceClass(cfg, node)
	provider, class := "", ""
	if fc != nil {
		provider, class = fc.Provider, fc.Name
	}
	heartbeat := release.Heartbeat(node, lease)
	t := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: takeoverName(node.Name, now)},
		Spec: v1alpha1.TakeoverSpec{
			NodeName: node.Name, NodeUID: string(node.UID),
			Strategy: v1alpha1.Strategy(cfg.ReleaseStrategy), FenceProvider: provider, FenceClass: class, DryRun: cfg.DryRun,
			Heartbeat: heartbeat, BootID: node.Status.NodeInfo.BootID,
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
	c.m.TakeoversOpened.Inc()
	t.Status.Heartbeat = heartbeat
	t.Status.BootID = node.Status.NodeInfo.BootID
	c.noteLastHeartbeat(t)
	return soon, c.transition(ctx, t, step{phase: v1alpha1.PhaseDetected, reason: d.Reason, message: d.Message,
		log: "node unhealthy: takeover opened", event: decide.EventTakeoverDetected, warning: true,
		eventMessage: fmt.Sprintf("%s; Takeover %s opened", d.Message, t.Name)})
}

// noteLastHeartbeat records on t, with its Detected status, when the
// node's heartbeat was last seen to change: the start of the window that
// expired, from which the downtime breakdown counts.
func (c *Controller) noteLastHeartbeat(t *v1alpha1.Takeover) {
	t.Status.LastHeartbeatSeen = nil
	if at, ok := c.health.lastHeartbeat(t.Spec.NodeName); ok {
		m := metav1.NewMicroTime(at)
		t.Status.LastHeartbeatSeen = &m
	}
}

// pausedPoll is how often a paused incident is looked at again.
const pausedPoll = 5 * time.Second

// pause holds the incident for the decision's reason.
func (c *Controller) pause(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision) (time.Duration, error) {
	if t.Status.Phase != v1alpha1.PhasePaused || t.Status.Reason != d.Reason {
		if err := c.transition(ctx, t, step{phase: v1alpha1.PhasePaused, reason: d.Reason, message: d.Message,
			log: "takeover paused", event: d.Reason, warning: true}); err != nil {
			return 0, err
		}
	}
	return pausedPoll, nil
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
	if fc := fenceClass(c.confIn(ctx), node); fc != nil {
		provider = fmt.Sprintf("%s (class %s)", fc.Provider, fc.Name)
	}
	msg := fmt.Sprintf("dry run: would fence with %s, release with %s, and move %d pods [%s] and VolumeAttachments [%s]",
		provider, t.Spec.Strategy, len(pods), strings.Join(pods, ", "), strings.Join(c.cachedVANames(node.Name), ", "))
	return 0, c.transition(ctx, t, step{phase: v1alpha1.PhasePaused, reason: decide.ReasonDryRun, message: msg,
		log: "dry run", event: decide.ReasonDryRun})
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
	return 0, c.transition(ctx, t, step{phase: v1alpha1.PhaseRecovered, reason: decide.ReasonNodeRecovered, message: msg,
		log: "node recovered: takeover closed", event: decide.EventRecovered})
}

// abort closes an incident whose node came back (or went away) before
// anything was released.
func (c *Controller) abort(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision) (_ time.Duration, err error) {
	co := pendingConfirmOff(t)
	if co != nil && d.Reason == decide.ReasonHeartbeatResumed {
		// An operator said the node is off; its heartbeat says otherwise.
		d.Message = refusedMessage(co, d.Message)
		defer func() {
			if err == nil {
				c.confirmOffRefused(t, co, d.Message)
			}
		}()
	}
	return 0, c.transition(ctx, t, step{phase: v1alpha1.PhaseRecovered, reason: d.Reason, message: d.Message,
		log: "takeover closed before release", event: decide.EventTakeoverAborted})
}

// recorded reports whether a waiting decision is written on the incident
// (the node's return, or its reboot, is awaited).
func recorded(d decide.Decision) bool {
	return d.Reason == decide.ReasonAwaitingReboot || d.Reason == decide.ReasonAwaitingNode
}

// await records on a released incident what it waits for. A node back
// with its boot ID unchanged was not proven to have rebooted: for provider
// wait, its watchdog did not fire; a Warning and a metric say so.
func (c *Controller) await(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision) error {
	msg := d.Message
	if msg == "" {
		msg = "the node has not returned; its workloads run elsewhere"
	}
	s := step{phase: t.Status.Phase, reason: d.Reason, message: msg, log: "takeover waits for the node"}
	if d.Reason == decide.ReasonAwaitingReboot {
		s.event, s.warning = decide.EventWatchdogNotFired, true
		if t.Spec.FenceProvider != config.ProviderWait {
			s.event = decide.ReasonAwaitingReboot
		} else {
			s.eventMessage = "the node returned with its boot ID unchanged after a wait fence: its watchdog did not fire, so it was not proven off; liberator keeps its taint"
		}
		c.m.RebootNotProven.WithLabelValues(t.Spec.FenceProvider).Inc()
	}
	return c.transition(ctx, t, s)
}

// confirmResumed closes an incident whose heartbeat the cache showed
// resuming only if a live read confirms it (decide.ConfirmResumed): a
// lagging cache closes nothing.
func (c *Controller) confirmResumed(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	_, check, err := c.liveCheck(ctx, t)
	if err != nil {
		return 0, err
	}
	d := decide.ConfirmResumed(incident(t), check)
	if d.Action != decide.Abort {
		c.log.V(1).Info("heartbeat in the cache not confirmed live", "node", t.Spec.NodeName, "takeover", t.Name, "reason", d.Reason)
		return d.RequeueAfter, nil
	}
	return c.abort(ctx, t, d)
}

// redetect starts the incident over (decide.Redetect): the renewed
// heartbeat becomes its fingerprint, any fence is void (the wait
// provider's safe time restarts too), and the node is fenced by name once
// it stays silent for a whole window.
func (c *Controller) redetect(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision, live decide.Live) error {
	t.Status.Heartbeat = live.Detail
	t.Status.NextRetryTime = nil
	c.noteLastHeartbeat(t)
	c.forgetSeen(t)
	return c.transition(ctx, t, step{phase: v1alpha1.PhaseDetected, reason: d.Reason, message: d.Message,
		log: "takeover starts over: the deleted node's Lease renewed", event: d.Reason, warning: true})
}
