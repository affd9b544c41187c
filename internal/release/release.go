// Package release holds liberator's destructive actions on a fenced node:
// the out-of-service taint, deleting the Node, force-deleting its pods and
// deleting its VolumeAttachments. Every action is idempotent (NotFound and
// already-done are success) and every one that touches the Node carries the
// resourceVersion of a live read as a precondition, so a heartbeat that
// arrives between the check and the call makes the call fail.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// NodeLeaseNamespace holds the kubelets' heartbeat Leases.
const NodeLeaseNamespace = "kube-node-lease"

// OutOfServiceTaint is the taint Kubernetes reads as "this node is shut down;
// its pods may be deleted and its volumes detached".
var OutOfServiceTaint = corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}

// FencedTaint keeps the scheduler from placing a released pod back on a
// fenced node that Kubernetes has not yet marked unreachable (the
// ForceDelete strategy, which adds no out-of-service taint).
var FencedTaint = corev1.Taint{Key: "liberator.dev/fenced", Value: "true", Effect: corev1.TaintEffectNoSchedule}

// Taints are the taints liberator adds; recovery removes them.
var Taints = []corev1.Taint{OutOfServiceTaint, FencedTaint}

// ErrHeartbeat is returned when a live re-read shows the node is alive.
var ErrHeartbeat = errors.New("the node's heartbeat changed since the incident was detected: it is alive, nothing is released")

// Heartbeat is a fingerprint of the node's last heartbeat: the Lease's
// renewTime and the Ready condition's lastHeartbeatTime. Comparing two
// fingerprints compares values the kubelet wrote, never clocks.
func Heartbeat(node *corev1.Node, lease *coordinationv1.Lease) string {
	s := "lease="
	if lease != nil && lease.Spec.RenewTime != nil {
		s += lease.Spec.RenewTime.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	s += ";ready="
	if node != nil {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				s += c.LastHeartbeatTime.UTC().Format("2006-01-02T15:04:05Z")
			}
		}
	}
	return s
}

// Live re-reads the Node and its Lease from the API server (not a cache) and
// returns the Node if its heartbeat still equals want. It returns
// ErrHeartbeat if the node is alive, and a NotFound error if the Node is
// gone.
func Live(ctx context.Context, c kubernetes.Interface, name, want string) (*corev1.Node, error) {
	node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	lease, err := c.CoordinationV1().Leases(NodeLeaseNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = nil
	} else if err != nil {
		return nil, err
	}
	if got := Heartbeat(node, lease); got != want {
		return node, fmt.Errorf("%w (was %s, now %s)", ErrHeartbeat, want, got)
	}
	return node, nil
}

// LeasePart is the Lease part of a heartbeat fingerprint.
func LeasePart(fingerprint string) string {
	part, _, _ := strings.Cut(fingerprint, ";")
	return part
}

// LiveLease re-reads, for a Node that is gone, its Lease from the API
// server (a Lease may outlive its Node) and reports whether it renewed
// since the fingerprint want was taken, with the new fingerprint. A missing
// Lease has not renewed.
func LiveLease(ctx context.Context, c kubernetes.Interface, name, want string) (bool, string, error) {
	lease, err := c.CoordinationV1().Leases(NodeLeaseNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, want, nil
	}
	if err != nil {
		return false, "", err
	}
	got := Heartbeat(nil, lease)
	return LeasePart(got) != LeasePart(want), got, nil
}

// HasTaint reports whether the node carries the out-of-service taint.
func HasTaint(node *corev1.Node) bool { return has(node, OutOfServiceTaint) }

// HasLiberatorTaint reports whether the node carries any of liberator's
// taints.
func HasLiberatorTaint(node *corev1.Node) bool {
	for _, t := range Taints {
		if has(node, t) {
			return true
		}
	}
	return false
}

func has(node *corev1.Node, taint corev1.Taint) bool {
	for _, t := range node.Spec.Taints {
		if t.MatchTaint(&taint) {
			return true
		}
	}
	return false
}

func patchTaints(ctx context.Context, c kubernetes.Interface, node *corev1.Node, taints []corev1.Taint) error {
	if taints == nil {
		taints = []corev1.Taint{}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": node.UID, "resourceVersion": node.ResourceVersion},
		"spec":     map[string]any{"taints": taints},
	})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// Taint adds taint to node (a live copy), guarded by its resourceVersion.
func Taint(ctx context.Context, c kubernetes.Interface, node *corev1.Node, taint corev1.Taint) error {
	if has(node, taint) {
		return nil
	}
	taints := append(append([]corev1.Taint(nil), node.Spec.Taints...), taint)
	return patchTaints(ctx, c, node, taints)
}

// Untaint removes liberator's taints from the live node.
func Untaint(ctx context.Context, c kubernetes.Interface, name string) error {
	node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !HasLiberatorTaint(node) {
		return nil
	}
	var keep []corev1.Taint
	for _, t := range node.Spec.Taints {
		ours := false
		for _, l := range Taints {
			ours = ours || t.MatchTaint(&l)
		}
		if !ours {
			keep = append(keep, t)
		}
	}
	return patchTaints(ctx, c, node, keep)
}

// DeleteNode deletes node (a live copy) on the precondition that it is
// unchanged since it was read.
func DeleteNode(ctx context.Context, c kubernetes.Interface, node *corev1.Node) error {
	err := c.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &node.UID, ResourceVersion: &node.ResourceVersion},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Pod is a pod released from the node.
type Pod struct {
	Namespace, Name string
	UID             types.UID
	OwnerKind       string
	OwnerName       string
	OwnerUID        types.UID
	OwnerAPIVersion string
}

// PodsOnNode lists, live, the pods bound to the node that a controller will
// recreate elsewhere or that must not survive it (DaemonSet pods and mirror
// pods are skipped: they belong to the node).
func PodsOnNode(ctx context.Context, c kubernetes.Interface, node string) ([]corev1.Pod, error) {
	list, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if BelongsToNode(&p) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// BelongsToNode reports whether a pod lives and dies with its node
// (DaemonSet and mirror pods), so it is not released.
func BelongsToNode(p *corev1.Pod) bool {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	if o := metav1.GetControllerOf(p); o != nil && o.Kind == "DaemonSet" {
		return true
	}
	return false
}

// Describe returns the released-pod record for p.
func Describe(p *corev1.Pod) Pod {
	r := Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID}
	if o := metav1.GetControllerOf(p); o != nil {
		r.OwnerKind, r.OwnerName, r.OwnerUID, r.OwnerAPIVersion = o.Kind, o.Name, o.UID, o.APIVersion
	}
	return r
}

// ForceDeletePod deletes the pod with grace period 0, on the precondition
// that it is the same pod (UID) that was listed.
func ForceDeletePod(ctx context.Context, c kubernetes.Interface, p *corev1.Pod) error {
	err := c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or replaced by a new pod of the same name.
		return nil
	}
	return err
}

// DeleteVolumeAttachments deletes the given VolumeAttachments of a fenced
// node (each on the precondition of its UID) and returns their names.
func DeleteVolumeAttachments(ctx context.Context, c kubernetes.Interface, vas []*storagev1.VolumeAttachment) ([]string, error) {
	var names []string
	for _, va := range vas {
		err := c.StorageV1().VolumeAttachments().Delete(ctx, va.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &va.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return names, fmt.Errorf("delete VolumeAttachment %s: %w", va.Name, err)
		}
		names = append(names, va.Name)
	}
	return names, nil
}
