package cli

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/internal/release"
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

// podReady reports whether the pod is Running and Ready.
func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
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
	if p.Status.Phase == corev1.PodRunning && !podReady(p) {
		return "Running on " + p.Spec.NodeName + ", not Ready"
	}
	return fmt.Sprintf("%s on %s", p.Status.Phase, p.Spec.NodeName)
}

// movingPod is a stateful pod that leaves a node, and what became of it.
type movingPod struct {
	Namespace, Name string
	UID             types.UID
	Risk            string
	OwnerKind       string
	OwnerName       string
	OwnerUID        types.UID
	From            string
	// before holds the UIDs of the owner's pods that existed when the move
	// began: none of them is a replacement.
	before map[types.UID]bool

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
	m := &movingPod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Risk: risk, From: p.Spec.NodeName, Last: "on " + p.Spec.NodeName}
	if o := metav1.GetControllerOf(p); o != nil {
		m.OwnerKind, m.OwnerName, m.OwnerUID = o.Kind, o.Name, o.UID
	}
	return m
}

// recreated reports whether a controller recreates the pod after it is
// deleted. A pod without one is gone for good.
func (m *movingPod) recreated() bool { return m.OwnerKind != "" }

// replacedBy reports whether p stands in for m: for a StatefulSet pod the
// pod of the same name with a new UID; for another controller's pod a new
// pod of the same controller; either bound to a node other than the one m
// left.
func (m *movingPod) replacedBy(p *corev1.Pod) bool {
	if p.Namespace != m.Namespace || p.UID == m.UID || p.DeletionTimestamp != nil {
		return false
	}
	if m.OwnerKind == "StatefulSet" || m.OwnerKind == "" {
		return p.Name == m.Name
	}
	o := metav1.GetControllerOf(p)
	return o != nil && o.UID == m.OwnerUID && !m.before[p.UID]
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

// noteExisting records pods that exist before the move begins, so that none
// of them is taken for a replacement.
func (t *tracker) noteExisting(p *corev1.Pod) {
	o := metav1.GetControllerOf(p)
	if o == nil {
		return
	}
	for _, m := range t.pods {
		if m.OwnerUID == o.UID && m.OwnerKind != "StatefulSet" {
			if m.before == nil {
				m.before = map[types.UID]bool{}
			}
			m.before[p.UID] = true
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
	m := t.claimed[p.UID]
	if m == nil {
		for _, c := range t.pods {
			if c.Ready.IsZero() && c.Replacement == "" && c.replacedBy(p) {
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
	if m.Ready.IsZero() && podReady(p) {
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
		if m.recreated() && m.Ready.IsZero() {
			out = append(out, m)
		}
	}
	return out
}
