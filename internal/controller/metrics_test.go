package controller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
)

// histogram returns an observer's sample count and sum.
func histogram(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// A takeover from detection to WorkloadsReady and back to Recovered: one
// takeover opened and one succeeded however many steps it took; the phase
// times count from the last heartbeat seen; the downtime and its parts
// are observed once, as status.downtime records them; the open takeovers
// gauge has no Recovered series.
func TestTakeoverMetricsSucceeded(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	tk := f.toWorkloadsReady()
	m := f.c.m
	hb := tk.Status.LastHeartbeatSeen
	if hb == nil || tk.Status.Downtime == nil || tk.Status.Downtime.Total == nil {
		t.Fatalf("no lastHeartbeatSeen or downtime recorded: %+v", tk.Status)
	}

	if n := testutil.ToFloat64(m.TakeoversOpened); n != 1 {
		t.Errorf("liberator_takeovers_total %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("succeeded")); n != 1 {
		t.Errorf("finished{succeeded} %v, want 1", n)
	}
	for _, p := range []v1alpha1.Phase{v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady} {
		if n := testutil.ToFloat64(m.Transitions.WithLabelValues(string(p), "success")); n != 1 {
			t.Errorf("transitions{%s,success} %v, want 1", p, n)
		}
		n, sum := histogram(t, m.PhaseSeconds.WithLabelValues(string(p)))
		want := tk.PhaseTime(p).Sub(hb.Time).Seconds()
		if n != 1 || sum != want {
			t.Errorf("phase_seconds{%s}: %d samples, sum %v; want 1, %v (from the last heartbeat seen)", p, n, sum, want)
		}
	}
	if _, sum := histogram(t, m.PhaseSeconds.WithLabelValues("Detected")); sum != f.cfg.UnhealthyAfter.Seconds() {
		t.Errorf("phase_seconds{Detected} %v, want the window %v", sum, f.cfg.UnhealthyAfter.Seconds())
	}
	checkDowntimeObserved := func() {
		t.Helper()
		d := f.mustTakeover(failedNode).Status.Downtime
		if n, sum := histogram(t, m.Downtime); n != 1 || sum != d.Total.Seconds() {
			t.Errorf("downtime_seconds: %d samples, sum %v; want 1, %v (status.downtime.total)", n, sum, d.Total.Seconds())
		}
		parts := 0
		for _, p := range d.Parts() {
			if p.Name == "total" || p.Duration == nil {
				continue
			}
			parts++
			if n, sum := histogram(t, m.DowntimeParts.WithLabelValues(p.Name)); n != 1 || sum != p.Duration.Seconds() {
				t.Errorf("downtime_part_seconds{%s}: %d samples, sum %v; want 1, %v", p.Name, n, sum, p.Duration.Seconds())
			}
		}
		if parts < 3 {
			t.Errorf("only %d downtime parts recorded: %s", parts, d.Summary())
		}
	}
	checkDowntimeObserved()
	f.sync()
	f.c.publishPhases()
	if n := testutil.ToFloat64(m.OpenTakeovers.WithLabelValues("WorkloadsReady")); n != 1 {
		t.Errorf("open_takeovers{WorkloadsReady} %v, want 1", n)
	}

	// The node comes back rebooted: the incident closes as Recovered.
	f.advance(time.Minute)
	f.revive(failedNode)
	f.setNodeReady(failedNode, corev1.ConditionTrue, "boot-w1-2")
	f.mustStep(failedNode)
	f.advance(f.cfg.HealthyDelay.Duration)
	f.stepUntil(failedNode, v1alpha1.PhaseRecovered, 2)
	f.sync()
	f.c.publishPhases()

	if n := testutil.ToFloat64(m.TakeoversOpened); n != 1 {
		t.Errorf("liberator_takeovers_total %v after recovery, want 1", n)
	}
	if n := testutil.ToFloat64(m.Transitions.WithLabelValues("Recovered", "success")); n != 1 {
		t.Errorf("transitions{Recovered,success} %v, want 1", n)
	}
	if s, a := testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("succeeded")), testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("aborted")); s != 1 || a != 0 {
		t.Errorf("finished succeeded %v, aborted %v; want 1, 0", s, a)
	}
	checkDowntimeObserved()
	if n := testutil.ToFloat64(m.OpenTakeovers.WithLabelValues("WorkloadsReady")); n != 0 {
		t.Errorf("open_takeovers{WorkloadsReady} %v after recovery, want 0", n)
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "liberator_open_takeovers" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "phase" && l.GetValue() == string(v1alpha1.PhaseRecovered) {
					t.Errorf("liberator_open_takeovers has a Recovered series")
				}
			}
		}
	}
}

// An incident closed before anything was released counts as aborted, with
// no downtime observed.
func TestTakeoverMetricsAborted(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	f.heartbeatOnServer(failedNode)
	if _, err := f.reconcile(failedNode); err != nil {
		t.Fatal(err)
	}
	tk := f.mustTakeover(failedNode)
	checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Fenced/Fenced", "Recovered/HeartbeatResumed")
	m := f.c.m
	if s, a := testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("succeeded")), testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("aborted")); s != 0 || a != 1 {
		t.Errorf("finished succeeded %v, aborted %v; want 0, 1", s, a)
	}
	if n := testutil.ToFloat64(m.Transitions.WithLabelValues("Recovered", "aborted")); n != 1 {
		t.Errorf("transitions{Recovered,aborted} %v, want 1", n)
	}
	if n, _ := histogram(t, m.Downtime); n != 0 {
		t.Errorf("downtime observed %d times for an aborted takeover", n)
	}
	if n := testutil.ToFloat64(m.TakeoversOpened); n != 1 {
		t.Errorf("liberator_takeovers_total %v, want 1", n)
	}
}

// Without a last heartbeat seen, the phase times count from the last
// Detected entry (an incident started over counts from its new start).
func TestPhaseSecondsFromDetection(t *testing.T) {
	at := func(s int) metav1.MicroTime {
		return metav1.NewMicroTime(fixtureStart.Add(time.Duration(s) * time.Second))
	}
	tk := &v1alpha1.Takeover{Status: v1alpha1.TakeoverStatus{Timeline: []v1alpha1.PhaseTransition{
		{Phase: v1alpha1.PhaseDetected, Time: at(0)}, {Phase: v1alpha1.PhaseFailed, Time: at(10)}, {Phase: v1alpha1.PhaseDetected, Time: at(100)},
	}}}
	if from, ok := phaseClockStart(tk); !ok || !from.Equal(at(100).Time) {
		t.Errorf("from %v (%v), want the last Detected %v", from, ok, at(100).Time)
	}
	hb := at(-40)
	tk.Status.LastHeartbeatSeen = &hb
	if from, _ := phaseClockStart(tk); !from.Equal(hb.Time) {
		t.Errorf("from %v, want the last heartbeat seen %v", from, hb.Time)
	}
	if _, ok := phaseClockStart(&v1alpha1.Takeover{}); ok {
		t.Error("a clock start for a Takeover with no timeline")
	}
}

// A takeover whose workloadTimeout passed with a replacement not Ready is
// counted as finished with result timeout, not as a success; its downtime
// is still observed.
func TestTakeoverMetricsTimeout(t *testing.T) {
	f := newFixture(t)
	m := f.c.m
	total := metav1.Duration{Duration: 90 * time.Second}
	f.c.observeFinished(decide.ReasonWorkloadTimeout, &v1alpha1.Downtime{Total: &total})
	if s, o := testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("succeeded")), testutil.ToFloat64(m.TakeoversFinished.WithLabelValues("timeout")); s != 0 || o != 1 {
		t.Errorf("finished{succeeded} %v, finished{timeout} %v; want 0, 1", s, o)
	}
	if n, sum := histogram(t, m.Downtime); n != 1 || sum != 90 {
		t.Errorf("downtime: %d samples, sum %v; want 1, 90", n, sum)
	}
}
