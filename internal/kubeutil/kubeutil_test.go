package kubeutil

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReadiness(t *testing.T) {
	n := &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown},
	}}}
	if NodeReady(n) || NodeReadyStatus(n) != corev1.ConditionUnknown {
		t.Fatalf("Unknown node: ready %v, status %q", NodeReady(n), NodeReadyStatus(n))
	}
	n.Status.Conditions[1].Status = corev1.ConditionTrue
	if !NodeReady(n) || NodeReadyStatus(nil) != "" || NodeReady(&corev1.Node{}) {
		t.Fatal("Ready node not ready, or a nil/conditionless node ready")
	}
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	if PodReady(p) || !PodReadyCondition(p) {
		t.Fatalf("Pending pod with Ready condition: PodReady %v (want false), PodReadyCondition %v (want true)", PodReady(p), PodReadyCondition(p))
	}
	p.Status.Phase = corev1.PodRunning
	if !PodReady(p) {
		t.Fatal("Running Ready pod not ready")
	}
}
