package cli

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/internal/kubeutil"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/internal/replacement"
)

// Why a pod is at risk when its node fails.
const (
	riskStatefulSet = "StatefulSet"
	riskRWOVolume   = "RWO volume"
)

// rwoClaims maps "namespace/name" of every claim to whether it is
// ReadWriteOnce or ReadWriteOncePod: a volume only one node may use.
func rwoClaims(pvcs []corev1.PersistentVolumeClaim) map[string]bool {
	m := make(map[string]bool, len(pvcs))
	for _, c := range pvcs {
		rwo := false
		for _, a := range c.Spec.AccessModes {
			if a == corev1.ReadWriteOnce || a == corev1.ReadWriteOncePod {
				rwo = true
			}
		}
		m[c.Namespace+"/"+c.Name] = rwo
	}
	return m
}

// atRisk says why the pod stays down when its node fails without fencing:
// it belongs to a StatefulSet, or it mounts a claim only one node may use.
// A claim missing from claims (not yet created, or not readable) counts as
// ReadWriteOnce. Finished pods and pods that live and die with their node
// (DaemonSet, mirror pods) are not at risk: it returns "".
func atRisk(p *corev1.Pod, claims map[string]bool) string {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || release.BelongsToNode(p) {
		return ""
	}
	if o := metav1.GetControllerOf(p); o != nil && o.Kind == "StatefulSet" {
		return riskStatefulSet
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		rwo, known := claims[p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName]
		if rwo || !known {
			return riskRWOVolume
		}
	}
	return ""
}

// podState is a short description of where a pod stands, for progress
// lines.
func podState(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	if p.Spec.NodeName == "" {
		return "Pending (not scheduled)"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("%s on %s: %s", p.Status.Phase, p.Spec.NodeName, w.Reason)
		}
	}
	if p.Status.Phase == corev1.PodRunning && !kubeutil.PodReady(p) {
		return "Running on " + p.Spec.NodeName + ", not Ready"
	}
	return fmt.Sprintf("%s on %s", p.Status.Phase, p.Spec.NodeName)
}

// movingPod is a stateful pod that leaves a node, and what became of it.
// Which pod stands in for it is replacement.Moved's answer, the one the
// controller gives too.
type movingPod struct {
	replacement.Moved
	Risk      string
	OwnerName string

	Replacement string
	Node        string
	// Scheduled and Ready are when the replacement was first seen bound to
	// a node and Ready there.
	Scheduled time.Time
	Ready     time.Time
	// Last describes the newest state seen, for timeouts.
	Last string
}

func (m *movingPod) key() string { return m.Namespace + "/" + m.Name }

func (m *movingPod) owner() string {
	if m.OwnerKind == "" {
		return "-"
	}
	return m.OwnerKind + "/" + m.OwnerName
}

func newMovingPod(p *corev1.Pod, risk string) *movingPod {
	m := &movingPod{
		Moved: replacement.Moved{Namespace: p.Namespace, Name: p.Name, UID: p.UID, From: p.Spec.NodeName},
		Risk:  risk, Last: "on " + p.Spec.NodeName,
	}
	if o := metav1.GetControllerOf(p); o != nil {
		m.OwnerKind, m.OwnerName, m.OwnerUID = o.Kind, o.Name, o.UID
	}
	return m
}

// podEvent is a pod as seen at a time.
type podEvent struct {
	pod *corev1.Pod
	at  time.Time
}

// tracker follows the replacements of moving pods. It is not safe for
// concurrent use; feed it from one goroutine.
type tracker struct {
	pods []*movingPod
	// claimed maps a replacement's UID to the moving pod it stands in for,
	// so two pods of one ReplicaSet do not count one replacement twice.
	claimed map[types.UID]*movingPod
}

func newTracker(pods []*movingPod) *tracker {
	sort.SliceStable(pods, func(i, j int) bool { return pods[i].key() < pods[j].key() })
	return &tracker{pods: pods, claimed: map[types.UID]*movingPod{}}
}

// noteExisting records a pod that exists before the move begins as a
// sibling of the moving pods of its owner (Moved.Siblings), so that it is
// never taken for a replacement.
func (t *tracker) noteExisting(p *corev1.Pod) {
	o := metav1.GetControllerOf(p)
	if o == nil {
		return
	}
	for _, m := range t.pods {
		if m.OwnerUID == o.UID && m.UID != p.UID {
			if m.Siblings == nil {
				m.Siblings = map[types.UID]bool{}
			}
			m.Siblings[p.UID] = true
		}
	}
}

// progress is a change worth a line of output.
type progress struct {
	pod  *movingPod
	what string // "scheduled" or "ready"
}

// observe takes a pod seen at a time and returns the changes it brings.
// Only a replacement on another node counts; one bound to the node the pod
// left (possible only if that node is schedulable) is noted as such.
func (t *tracker) observe(p *corev1.Pod, at time.Time) []progress {
	var out []progress
	rp := replacement.FromPod(p)
	m := t.claimed[p.UID]
	if m == nil {
		for _, c := range t.pods {
			if c.Ready.IsZero() && c.Replacement == "" && c.StandsIn(rp) {
				m = c
				break
			}
		}
		if m == nil {
			// The pod being moved itself: note its state.
			for _, c := range t.pods {
				if c.UID == p.UID && c.Replacement == "" {
					c.Last = podState(p)
				}
			}
			return nil
		}
	}
	if p.Spec.NodeName == "" {
		m.Last = podState(p)
		return nil
	}
	if p.Spec.NodeName == m.From {
		m.Last = "recreated on the node it left (" + m.From + ")"
		return nil
	}
	if m.Replacement == "" {
		t.claimed[p.UID] = m
		m.Replacement = p.Name
	}
	if m.Scheduled.IsZero() {
		m.Scheduled, m.Node = at, p.Spec.NodeName
		out = append(out, progress{pod: m, what: "scheduled"})
	}
	m.Last = podState(p)
	if m.Ready.IsZero() && rp.Ready {
		m.Ready, m.Node = at, p.Spec.NodeName
		out = append(out, progress{pod: m, what: "ready"})
	}
	return out
}

// forget drops a replacement that was deleted before it was Ready, so that
// the next one counts.
func (t *tracker) forget(p *corev1.Pod) []progress {
	m := t.claimed[p.UID]
	if m == nil || !m.Ready.IsZero() {
		return nil
	}
	delete(t.claimed, p.UID)
	m.Replacement, m.Node, m.Scheduled = "", "", time.Time{}
	m.Last = "replacement " + p.Name + " deleted"
	return []progress{{pod: m, what: "lost"}}
}

// describe is the progress line for p.
func (p progress) describe() string {
	m := p.pod
	switch p.what {
	case "scheduled":
		return fmt.Sprintf("%s scheduled on %s", m.key(), m.Node)
	case "ready":
		why := m.owner()
		if m.Risk != riskStatefulSet {
			why += ", " + m.Risk
		}
		return fmt.Sprintf("%s Ready on %s (%s)", m.key(), m.Node, why)
	default:
		return fmt.Sprintf("%s: %s before it was Ready; waiting for the next", m.key(), m.Last)
	}
}

// waiting lists the pods whose replacement is not Ready yet (pods no
// controller recreates excluded).
func (t *tracker) waiting() []*movingPod {
	var out []*movingPod
	for _, m := range t.pods {
		if m.Recreated() && m.Ready.IsZero() {
			out = append(out, m)
		}
	}
	return out
}
