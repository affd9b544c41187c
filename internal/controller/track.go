package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/replacement"
)

// track records, for each released pod with an owner, when a replacement
// was first seen bound to another node and the replacement that became
// Ready there, and asks decide.TrackDecision whether the
// workloads are done.
func (c *Controller) track(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	changed, waiting := c.findReplacements(t)
	w := decide.Workloads{Moved: len(t.Status.MovedPods), Waiting: waiting, Timeout: c.confIn(ctx).WorkloadTimeout.Duration}
	if rel := t.PhaseTime(v1alpha1.PhaseReleased); rel != nil {
		w.SinceRelease = c.clock.Since(rel.Time)
	}
	d := decide.TrackDecision(w)
	if d.Action == decide.WorkloadsDone {
		if err := c.transition(ctx, t, step{phase: v1alpha1.PhaseWorkloadsReady, reason: d.Reason, message: d.Message,
			log: "released workloads done", event: d.Reason, warning: d.Reason != decide.ReasonWorkloadsReady}); err != nil {
			return 0, err
		}
		c.powerOn(ctx, t)
		return soon, nil
	}
	if changed {
		if err := c.writeStatus(ctx, t); err != nil {
			return 0, err
		}
	}
	return d.RequeueAfter, nil
}

// findReplacements records on t the replacements newly bound elsewhere
// (scheduledTime) and newly Ready elsewhere (readyTime), and returns
// whether any of that changed, and the moved pods still waiting.
func (c *Controller) findReplacements(t *v1alpha1.Takeover) (bool, []string) {
	changed, waiting := false, []string{}
	claimed := map[string]bool{}
	for _, m := range t.Status.MovedPods {
		if m.ReplacementName != "" {
			claimed[m.Namespace+"/"+m.ReplacementName] = true
		}
	}
	now := metav1.NewMicroTime(c.clock.Now())
	owned := map[string][]replacement.Pod{} // one cache read per owner, not per moved pod
	bound := map[string]bool{}              // replacements bound, not yet Ready, matched in this pass
	for i := range t.Status.MovedPods {
		m := &t.Status.MovedPods[i]
		if m.OwnerKind == "" || m.ReadyTime != nil {
			continue
		}
		moved, candidates := c.candidates(t.Spec.NodeName, m, claimed, owned)
		r := moved.Find(candidates, nil)
		if r == nil {
			waiting = append(waiting, m.Namespace+"/"+m.Name)
			changed = noteScheduled(m, &moved, candidates, bound, now) || changed
			continue
		}
		if m.ScheduledTime == nil { // bound and Ready by the first look
			m.ScheduledTime = &now
		}
		m.ReplacementName, m.ReplacementNode, m.ReadyTime = r.Name, r.NodeName, &now
		claimed[r.Namespace+"/"+r.Name] = true
		changed = true
		c.log.Info("workload ready elsewhere", "node", t.Spec.NodeName, "pod", m.Namespace+"/"+m.Name, "replacement", r.Name, "on", r.NodeName)
		if ref := ownerRef(t, *m); ref != nil {
			c.recorder.Eventf(ref, corev1.EventTypeNormal, decide.EventPodReady, "replacement %s Ready on node %s (pod %s moved from failed node %s, Takeover %s)",
				r.Name, r.NodeName, m.Name, t.Spec.NodeName, t.Name)
		}
	}
	return changed, waiting
}

// noteScheduled records when a replacement of m, not yet Ready, was first
// seen bound to another node, and forgets it when that replacement is gone
// (deleted before it was Ready: the next one's binding counts). bound holds
// the replacements already matched to a moved pod in this pass, so that two
// pods of one owner are not both scheduled by one replacement. It reports
// whether m changed.
func noteScheduled(m *v1alpha1.MovedPod, moved *replacement.Moved, candidates []replacement.Pod, bound map[string]bool, now metav1.MicroTime) bool {
	var found *replacement.Pod
	for i := range candidates {
		p := &candidates[i]
		if bound[p.Namespace+"/"+p.Name] || !moved.Elsewhere(*p) {
			continue
		}
		if found == nil || p.Created.Before(&found.Created) {
			found = p
		}
	}
	switch {
	case found != nil:
		bound[found.Namespace+"/"+found.Name] = true
		if m.ScheduledTime == nil {
			m.ScheduledTime = &now
			return true
		}
	case m.ScheduledTime != nil:
		m.ScheduledTime = nil
		return true
	}
	return false
}

// powerOn powers a fenced node back on once its workloads are elsewhere,
// where its class asks for it (powerOnAfterTakeover). A failure is recorded
// on the Takeover and leaves the node off, which is safe.
func (c *Controller) powerOn(ctx context.Context, t *v1alpha1.Takeover) {
	if _, err := c.powerOnAfterTakeover(ctx, t); err != nil {
		c.log.Info("power-on after takeover failed; the node stays off", "node", t.Spec.NodeName, "takeover", t.Name, "error", err.Error())
	}
}

// candidates returns m as the replacement model (internal/replacement)
// sees it, and the cached pods that may stand in for it, except those
// already claimed by another moved pod; owned memoizes the owners' pods for
// one tracking pass.
func (c *Controller) candidates(failed string, m *v1alpha1.MovedPod, claimed map[string]bool, owned map[string][]replacement.Pod) (replacement.Moved, []replacement.Pod) {
	moved := replacement.Moved{Namespace: m.Namespace, Name: m.Name, UID: types.UID(m.UID), OwnerKind: m.OwnerKind,
		OwnerUID: types.UID(m.OwnerUID), From: failed, Siblings: replacement.Set(m.SiblingUIDs)}
	var all []replacement.Pod
	if m.OwnerKind == "StatefulSet" {
		if o, ok, _ := c.pods.GetStore().GetByKey(m.Namespace + "/" + m.Name); ok {
			all = append(all, o.(*podInfo).candidate())
		}
	} else {
		if _, ok := owned[m.OwnerUID]; !ok {
			owned[m.OwnerUID] = c.ownedPods(m.OwnerUID)
		}
		all = owned[m.OwnerUID]
	}
	var unclaimed []replacement.Pod
	for _, p := range all {
		if !claimed[p.Namespace+"/"+p.Name] {
			unclaimed = append(unclaimed, p)
		}
	}
	return moved, unclaimed
}

// ownedPods returns the cached pods whose controller has the given UID.
func (c *Controller) ownedPods(ownerUID string) []replacement.Pod {
	objs, _ := c.pods.GetIndexer().ByIndex(byOwner, ownerUID)
	out := make([]replacement.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*podInfo).candidate())
	}
	return out
}
