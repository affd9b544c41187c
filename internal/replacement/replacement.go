// Package replacement is liberator's one model of "which pod took over a pod
// that left a node". The controller (tracking a Takeover's released pods)
// and the operator commands (evacuate, drill) both ask it, so they cannot
// disagree.
//
// The model: a pod that left node N is stood in for by
//   - a StatefulSet pod, or a pod no controller owns: the pod of the same
//     namespace and name with a new UID;
//   - another controller's pod (ReplicaSet, Job, ...): a pod of the same
//     controller that did not exist when the move began (the owner's other
//     pods, its siblings, are never a replacement);
//
// and it counts once it is bound to a node other than N, not being deleted,
// and Ready. One replacement stands in for one moved pod only.
package replacement

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/internal/kubeutil"
)

// Pod is what the model needs of a candidate pod.
type Pod struct {
	Namespace, Name string
	UID             types.UID
	// OwnerUID is the UID of the pod's controller, "" when it has none.
	OwnerUID types.UID
	// NodeName is the node the pod is bound to, "" while it is not.
	NodeName string
	// Deleting is true once the pod has a deletion timestamp.
	Deleting bool
	// Ready is true when the pod is Ready.
	Ready bool
	// Created orders candidates: the oldest suitable one is chosen.
	Created metav1.Time
}

// FromPod reads a Pod from a whole corev1.Pod.
func FromPod(p *corev1.Pod) Pod {
	out := Pod{
		Namespace: p.Namespace, Name: p.Name, UID: p.UID, NodeName: p.Spec.NodeName,
		Deleting: p.DeletionTimestamp != nil, Ready: kubeutil.PodReady(p), Created: p.CreationTimestamp,
	}
	if o := metav1.GetControllerOf(p); o != nil {
		out.OwnerUID = o.UID
	}
	return out
}

// Moved is a pod that left a node.
type Moved struct {
	Namespace, Name string
	UID             types.UID
	// OwnerKind and OwnerUID name the pod's controller ("" when none).
	OwnerKind string
	OwnerUID  types.UID
	// From is the node the pod left.
	From string
	// Siblings holds the UIDs of the owner's pods that existed when the move
	// began: none of them is a replacement.
	Siblings map[types.UID]bool
}

// Recreated reports whether a controller recreates the pod after it is
// deleted; a pod without one is gone for good.
func (m *Moved) Recreated() bool { return m.OwnerKind != "" }

// byName reports whether the replacement keeps the pod's name.
func (m *Moved) byName() bool { return m.OwnerKind == "" || m.OwnerKind == "StatefulSet" }

// StandsIn reports whether p is a replacement of m, wherever it is and
// whether Ready or not.
func (m *Moved) StandsIn(p Pod) bool {
	if p.Namespace != m.Namespace || p.UID == m.UID || p.Deleting {
		return false
	}
	if m.byName() {
		return p.Name == m.Name
	}
	return p.OwnerUID != "" && p.OwnerUID == m.OwnerUID && !m.Siblings[p.UID]
}

// Elsewhere reports whether p is a replacement of m bound to another node.
func (m *Moved) Elsewhere(p Pod) bool {
	return m.StandsIn(p) && p.NodeName != "" && p.NodeName != m.From
}

// ReadyElsewhere reports whether p is a replacement of m, Ready on another
// node: the pod took over.
func (m *Moved) ReadyElsewhere(p Pod) bool { return m.Elsewhere(p) && p.Ready }

// Find returns the oldest candidate that is Ready elsewhere and not claimed
// by another moved pod, or nil.
func (m *Moved) Find(candidates []Pod, claimed map[types.UID]bool) *Pod {
	var best *Pod
	for i := range candidates {
		p := &candidates[i]
		if claimed[p.UID] || !m.ReadyElsewhere(*p) {
			continue
		}
		if best == nil || older(p, best) {
			best = p
		}
	}
	return best
}

func older(a, b *Pod) bool {
	if a.Created.Equal(&b.Created) {
		return a.Name < b.Name
	}
	return a.Created.Before(&b.Created)
}

// SiblingUIDs returns, sorted, the UIDs of the pods among pods that share
// the controller ownerUID, except the moved pod itself.
func SiblingUIDs(ownerUID, self types.UID, pods []Pod) []string {
	if ownerUID == "" {
		return nil
	}
	var out []string
	for _, p := range pods {
		if p.OwnerUID == ownerUID && p.UID != self {
			out = append(out, string(p.UID))
		}
	}
	sort.Strings(out)
	return out
}

// Set turns a list of UIDs into a set.
func Set(uids []string) map[types.UID]bool {
	if len(uids) == 0 {
		return nil
	}
	s := make(map[types.UID]bool, len(uids))
	for _, u := range uids {
		s[types.UID(u)] = true
	}
	return s
}
