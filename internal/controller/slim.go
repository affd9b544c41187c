package controller

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/internal/replacement"
)

// slim is the informers' transform: it keeps only the fields liberator
// reads, so the caches of a 5,000-node, 100,000-pod cluster stay small.
// managedFields go from every object; pods become podInfo; nodes drop their
// image lists.
func slim(o any) (any, error) {
	switch v := o.(type) {
	case *corev1.Pod:
		return slimPod(v), nil
	case *corev1.Node:
		v.ManagedFields = nil
		v.Status.Images = nil
		return v, nil
	case *coordinationv1.Lease:
		v.ManagedFields = nil
		return v, nil
	case *storagev1.VolumeAttachment:
		v.ManagedFields = nil
		return v, nil
	}
	if a, err := meta.Accessor(o); err == nil {
		a.SetManagedFields(nil)
	}
	return o, nil
}

// podInfo is what liberator keeps of a Pod: its identity, controller,
// node, claims and readiness. A whole corev1.Pod is about 1.2 KB before any
// field is set; this is a fraction of it.
type podInfo struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	NodeName string
	Phase    corev1.PodPhase
	Ready    bool
	// Mirror and DaemonSet pods live and die with their node.
	BelongsToNode bool
	Claims        []string
}

// DeepCopyObject implements runtime.Object.
func (p *podInfo) DeepCopyObject() runtime.Object {
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Claims = append([]string(nil), p.Claims...)
	return &out
}

func (p *podInfo) key() string { return p.Namespace + "/" + p.Name }

func slimPod(p *corev1.Pod) *podInfo {
	out := &podInfo{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
		},
		NodeName:      p.Spec.NodeName,
		Phase:         p.Status.Phase,
		BelongsToNode: release.BelongsToNode(p),
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	for _, vol := range p.Spec.Volumes {
		if vol.PersistentVolumeClaim != nil {
			out.Claims = append(out.Claims, vol.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// candidate is the pod as the replacement model sees it.
func (p *podInfo) candidate() replacement.Pod {
	out := replacement.Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, NodeName: p.NodeName,
		Deleting: p.DeletionTimestamp != nil, Ready: p.Ready, Created: p.CreationTimestamp}
	if ref := metav1.GetControllerOf(p); ref != nil {
		out.OwnerUID = ref.UID
	}
	return out
}
