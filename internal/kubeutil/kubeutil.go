// Package kubeutil holds small readings of Kubernetes objects that the
// controller, the operator commands and the test bed share, so that each
// question has one answer.
package kubeutil

import corev1 "k8s.io/api/core/v1"

// NodeReadyStatus is the status of the node's Ready condition, "" when the
// node has none.
func NodeReadyStatus(n *corev1.Node) corev1.ConditionStatus {
	if n == nil {
		return ""
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool { return NodeReadyStatus(n) == corev1.ConditionTrue }

// PodReady reports whether the pod is Running and its Ready condition True.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	return PodReadyCondition(p)
}

// PodReadyCondition reports whether the pod's Ready condition is True,
// whatever its phase.
func PodReadyCondition(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
