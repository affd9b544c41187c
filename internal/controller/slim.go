package controller

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// slim is the informers' transform: it keeps only the fields liberator
// reads, so the caches of a 5,000-node, 100,000-pod cluster stay small.
// managedFields go from every object; pods keep their identity, owner,
// node, claims and Ready condition; nodes drop their image lists.
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

func slimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
			OwnerReferences: p.OwnerReferences,
		},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	if v, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		out.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: v}
	}
	for _, vol := range p.Spec.Volumes {
		if vol.PersistentVolumeClaim != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: vol.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vol.PersistentVolumeClaim.ClaimName}}})
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	return out
}
