package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/pause"
)

var configMapsGVR = corev1.SchemeGroupVersion.WithResource("configmaps")

// pauseOnServer creates the pause ConfigMap on the API server only (the
// watch has not delivered it).
func (f *fixture) pauseOnServer() *corev1.ConfigMap {
	f.t.Helper()
	cm := pause.ConfigMap(f.c.secretNamespace(), "alice", "upgrade")
	cm.CreationTimestamp = metav1.NewTime(f.clock.Now())
	cm.UID = "uid-pause"
	f.create(cm)
	return cm
}

// pauseLiberator is liberator pause as the controller sees it: on the API
// server and delivered by the watch.
func (f *fixture) pauseLiberator() {
	f.t.Helper()
	cm := f.pauseOnServer()
	if err := f.c.pauseInf.GetIndexer().Add(cm); err != nil {
		f.t.Fatal(err)
	}
	f.c.onPause(cm, false)
}

// resumeLiberator is liberator resume: the ConfigMap deleted, and the
// deletion delivered.
func (f *fixture) resumeLiberator() {
	f.t.Helper()
	ns := f.c.secretNamespace()
	o, err := f.tracker.Get(configMapsGVR, ns, pause.ConfigMapName)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.tracker.Delete(configMapsGVR, ns, pause.ConfigMapName); err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.pauseInf.GetIndexer().Delete(o); err != nil {
		f.t.Fatal(err)
	}
	f.c.onPause(o, true)
}

func (f *fixture) pausedGauge() float64 { return testutil.ToFloat64(f.c.m.Paused) }

// An incident in Detected when the pause begins is held (Paused,
// ClusterPaused) and not fenced however long the pause lasts; on resume it
// is fenced and released.
func TestPauseHoldsAnOpenIncident(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.pauseLiberator()
	if g := f.pausedGauge(); g != 1 {
		t.Errorf("liberator_paused %v while paused, want 1", g)
	}
	for range 5 {
		f.mustStep(failedNode)
		f.advance(time.Minute)
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Phase != v1alpha1.PhasePaused || tk.Status.Reason != decide.ReasonClusterPaused {
		t.Fatalf("incident while paused: %s/%s, want Paused/%s; %s", tk.Status.Phase, tk.Status.Reason, decide.ReasonClusterPaused, timeline(tk))
	}
	if !strings.Contains(tk.Status.Message, "by alice since") || !strings.Contains(tk.Status.Message, ": upgrade") {
		t.Errorf("held incident's message %q does not say who paused, since when and why", tk.Status.Message)
	}
	if n := len(f.fencer.Calls); n != 0 {
		t.Fatalf("fenced %d times while paused", n)
	}
	if f.released(failedNode) {
		t.Fatalf("released while paused: %v", f.destructive(failedNode))
	}

	f.resumeLiberator()
	if g := f.pausedGauge(); g != 0 {
		t.Errorf("liberator_paused %v after resume, want 0", g)
	}
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 3)
	if n := len(f.fencer.Calls); n != 1 {
		t.Errorf("fenced %d times after resume, want 1", n)
	}
	checkTimeline(t, f.mustTakeover(failedNode), "Detected/LeaseExpired", "Paused/ClusterPaused", "Fencing/FenceStarted", "Fenced/Fenced", "Released/Released")
}

// Paused before a node fails: no Takeover is opened, the node is still
// counted unhealthy; on resume the incident opens at once.
func TestPauseOpensNoTakeover(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.pauseLiberator()
	f.fail(failedNode)
	f.advance(f.cfg.UnhealthyAfter.Duration + time.Minute)
	f.mustStep(failedNode)
	f.c.scan()
	if tk := f.takeover(failedNode); tk != nil {
		t.Fatalf("a Takeover was opened while paused: %s", timeline(tk))
	}
	if n := testutil.ToFloat64(f.c.m.UnhealthyNodes); n != 1 {
		t.Errorf("liberator_unhealthy_nodes %v while paused, want 1 (the scan still watches)", n)
	}
	f.resumeLiberator()
	f.mustStep(failedNode)
	checkTimeline(t, f.mustTakeover(failedNode), "Detected/LeaseExpired")
}

// A node proven off before the pause began is released during it: it is
// off, so moving its workloads is safe.
func TestPauseReleasesAFencedNode(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	f.pauseLiberator()
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	if n := len(f.fencer.Calls); n != 1 {
		t.Errorf("fence calls %d, want the 1 made before the pause", n)
	}
}

// The pause is read live before a fence attempt starts: a pause the watch
// has not delivered yet still holds it.
func TestPauseReadLiveBeforeFencing(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.pauseOnServer()
	f.mustStep(failedNode)
	tk := f.mustTakeover(failedNode)
	if tk.Status.Phase != v1alpha1.PhasePaused || tk.Status.Reason != decide.ReasonClusterPaused {
		t.Fatalf("incident with the pause on the API server only: %s/%s, want Paused/%s; %s", tk.Status.Phase, tk.Status.Reason, decide.ReasonClusterPaused, timeline(tk))
	}
	if n := len(f.fencer.Calls); n != 0 {
		t.Fatalf("fenced %d times with the pause on the API server", n)
	}
}

// A pause that cannot be read before a fence attempt stops the attempt
// (retried with backoff): not knowing is not "not paused".
func TestPauseUnreadableStopsFencing(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.kube.PrependReactor("get", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(configMapsGVR.GroupResource(), pause.ConfigMapName, nil)
	})
	if _, err := f.step(failedNode); err == nil || !strings.Contains(err.Error(), "read the pause ConfigMap") {
		t.Fatalf("reconcile with the pause unreadable: error %v, want one about the pause ConfigMap", err)
	}
	if n := len(f.fencer.Calls); n != 0 {
		t.Fatalf("fenced %d times with the pause unreadable", n)
	}
}
