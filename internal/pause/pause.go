// Package pause is liberator's cluster-wide pause (liberator pause and
// liberator resume): while a ConfigMap named liberator-pause exists in the
// controller's namespace, the controller opens no Takeover and fences no
// node. The ConfigMap is the pause: it survives controller restarts and
// chart upgrades (the chart does not own it), and deleting it resumes.
package pause

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMapName is the name of the pause ConfigMap.
const ConfigMapName = "liberator-pause"

// The keys of the pause ConfigMap's data. When the pause began is the
// ConfigMap's creationTimestamp, set by the API server.
const (
	// KeyBy is who paused, as the API server authenticated them.
	KeyBy = "by"
	// KeyReason is why, in the operator's words.
	KeyReason = "reason"
)

// State is a pause in force.
type State struct {
	By, Reason string
	Since      time.Time
}

// Of reads the pause cm records. Any ConfigMap of that name pauses, one
// written by hand without data too: what it lacks reads "unknown".
func Of(cm *corev1.ConfigMap) State {
	s := State{By: cm.Data[KeyBy], Reason: cm.Data[KeyReason], Since: cm.CreationTimestamp.Time}
	if s.By == "" {
		s.By = "unknown"
	}
	if s.Reason == "" {
		s.Reason = "no reason given"
	}
	return s
}

// Note says who paused, since when and why, in one line: "by alice since
// 2026-12-02T15:00:00Z: upgrade".
func (s State) Note() string {
	return fmt.Sprintf("by %s since %s: %s", s.By, s.Since.UTC().Format(time.RFC3339), s.Reason)
}

// ConfigMap is the pause ConfigMap to create in namespace ns.
func ConfigMap(ns, by, reason string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/part-of": "liberator", "app.kubernetes.io/component": "pause"}},
		Data: map[string]string{KeyBy: by, KeyReason: reason},
	}
}
