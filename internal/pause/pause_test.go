package pause

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOf(t *testing.T) {
	since := time.Date(2026, 12, 2, 15, 0, 0, 0, time.FixedZone("CET", 3600))
	cm := ConfigMap("tkr-system", "alice", "upgrade to 1.34")
	cm.CreationTimestamp = metav1.NewTime(since)
	if got, want := Of(cm).Note(), "by alice since 2026-12-02T14:00:00Z: upgrade to 1.34"; got != want {
		t.Errorf("Note %q, want %q", got, want)
	}
	// Written by hand, without data: it pauses, and says what it lacks.
	bare := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "tkr-system", CreationTimestamp: metav1.NewTime(since)}}
	if got, want := Of(bare).Note(), "by unknown since 2026-12-02T14:00:00Z: no reason given"; got != want {
		t.Errorf("Note of a bare ConfigMap %q, want %q", got, want)
	}
	if cm.Name != ConfigMapName || cm.Namespace != "tkr-system" || cm.Labels["app.kubernetes.io/part-of"] != "liberator" {
		t.Errorf("ConfigMap %s/%s labels %v", cm.Namespace, cm.Name, cm.Labels)
	}
}
