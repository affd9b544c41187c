//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// taintEvicted reports whether Kubernetes' taint-eviction controller marked
// the pod for deletion.
func taintEvicted(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "DeletionByTaintManager" {
			return true
		}
	}
	return false
}

// replacementsDeleted finds replacements that the cleanup of an old pod
// deleted. Two proofs, either is enough:
//   - the taint-eviction controller marked a pod that was not on a node the
//     scenario failed (it deletes by name, so it can hit a replacement that
//     took the old pod's name);
//   - a pod had a "Scheduled" event, was then deleted before it ever ran,
//     and its node was not one the scenario failed: the replacement was
//     scheduled and thrown away, and a second one had to be scheduled.
func (o *oracle) replacementsDeleted() []string {
	o.mu.Lock()
	failed := make(map[string]bool, len(o.failed))
	for n := range o.failed {
		failed[n] = true
	}
	o.mu.Unlock()
	recs := o.pods.snapshot()
	scheduled, err := o.scheduledUIDs()
	if err != nil {
		return []string{"could not list the Scheduled events: " + err.Error()}
	}
	var out []string
	for _, r := range recs {
		id := r.ns + "/" + r.name
		switch {
		case r.taintEvicted && !failed[r.node]:
			out = append(out, fmt.Sprintf("%s (uid %s, on %q) was marked by the taint-eviction controller", id, short(r.uid), r.node))
		case scheduled[r.uid] && !r.deleted.IsZero() && r.running.IsZero() && !failed[r.node] && !r.deleted.Before(o.start):
			out = append(out, fmt.Sprintf("%s (uid %s) was scheduled to %s and deleted at T+%.1fs before it ran", id, short(r.uid), r.node, r.deleted.Sub(o.start).Seconds()))
		}
	}
	slices.Sort(out)
	return out
}

// scheduledUIDs returns the UIDs of the pods that have a "Scheduled" event.
func (o *oracle) scheduledUIDs() (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	evs, err := o.c.Client().CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "reason=Scheduled"})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, ev := range evs.Items {
		if ev.InvolvedObject.Kind == "Pod" {
			out[string(ev.InvolvedObject.UID)] = true
		}
	}
	return out, nil
}
