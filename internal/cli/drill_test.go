package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// drillFixture is a drill of worker-1 triggered at 12:00:00.400: detected
// 10 s later, fenced and released at +15 s, mysql-0 Ready on worker-2 at
// +19 s, the probe failing from +0.1 s to +19.3 s.
func drillFixture() drillObservation {
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 400_000_000, time.UTC)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	whole := func(s int) metav1.MicroTime {
		return metav1.NewMicroTime(time.Date(2026, 3, 14, 12, 0, s, 0, time.UTC))
	}
	tk := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-20260314-120010"},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "worker-1", Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "lab"},
		Status: v1alpha1.TakeoverStatus{
			Phase: v1alpha1.PhaseWorkloadsReady,
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: whole(10), Reason: "LeaseExpired"},
				{Phase: v1alpha1.PhaseFencing, Time: whole(10), Reason: "Fencing"},
				{Phase: v1alpha1.PhaseFenced, Time: whole(15), Reason: "Fenced"},
				{Phase: v1alpha1.PhaseReleased, Time: whole(15), Reason: "AwaitingWorkloads"},
				{Phase: v1alpha1.PhaseWorkloadsReady, Time: whole(19), Reason: "AwaitingNodeReturn"},
			},
			MovedPods: []v1alpha1.MovedPod{{Namespace: "default", Name: "mysql-0", ReplacementName: "mysql-0", ReplacementNode: "worker-2", ReadyTime: new(whole(19))}},
		},
	}
	old := ownedPod("default", "mysql-0", "worker-1", "StatefulSet", "mysql")
	m := newMovingPod(&old, riskStatefulSet)
	m.Replacement, m.Node, m.Scheduled, m.Ready = "mysql-0", "worker-2", sec(15.6), sec(19.2)
	var samples []probeSample
	for s := -1.0; s < 25; s += 0.2 {
		samples = append(samples, probeSample{at: sec(s), ok: s < 0.1 || s > 19.3})
	}
	return drillObservation{
		node: "worker-1", method: "simulate", trigger: "kill-node 'worker-1'",
		triggerStart: sec(-0.1), triggered: t0, finished: sec(25),
		takeover: tk,
		seen:     map[int]time.Time{0: sec(10.1), 1: sec(10.1), 2: sec(15.2), 3: sec(15.2), 4: sec(19.4)},
		pods:     []*movingPod{m},
		probe:    samples,
		probeCfg: &probeConfig{address: "127.0.0.1:3306", interval: 200 * time.Millisecond},
	}
}

func TestDrillReportMatchesTimeline(t *testing.T) {
	ob := drillFixture()
	r := buildDrillReport(ob)
	if !r.Complete || r.Problem != "" {
		t.Fatalf("report incomplete: %+v", r)
	}
	if len(r.Phases) != len(ob.takeover.Status.Timeline) {
		t.Fatalf("%d phases, timeline has %d", len(r.Phases), len(ob.takeover.Status.Timeline))
	}
	for i, p := range ob.takeover.Status.Timeline {
		if r.Phases[i].Phase != string(p.Phase) || !r.Phases[i].Time.Equal(p.Time.Time) {
			t.Errorf("phase %d = %s at %s, timeline says %s at %s", i, r.Phases[i].Phase, r.Phases[i].Time, p.Phase, p.Time)
		}
	}
	want := map[string]float64{"detected": 9.6, "fenced": 14.6, "released": 14.6, "workloads": 18.6, "pods": 19.2}
	got := map[string]*float64{"detected": r.DetectedSeconds, "fenced": r.FencedSeconds, "released": r.ReleasedSeconds, "workloads": r.WorkloadsReadySeconds, "pods": r.AllPodsReadySeconds}
	for k, w := range want {
		if got[k] == nil || abs(*got[k]-w) > 1e-6 {
			t.Errorf("%s seconds = %v, want %.1f", k, got[k], w)
		}
	}
	p := r.Pods[0]
	if p.To != "worker-2" || p.ReadyTime == nil || !p.ReadyTime.Equal(ob.takeover.Status.MovedPods[0].ReadyTime.Time) || abs(*p.ObservedReadySeconds-19.2) > 1e-6 {
		t.Errorf("pod %+v", p)
	}
	if pr := r.Probe; pr == nil || pr.DowntimeSeconds == nil || abs(*pr.DowntimeSeconds-19.2) > 0.01 || pr.DownBeforeTrigger {
		t.Errorf("probe %+v", r.Probe)
	}
	// The JSON keeps the Takeover's timestamps exactly.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back DrillReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Phases[2].Time.Equal(ob.takeover.Status.Timeline[2].Time.Time) {
		t.Errorf("JSON round trip changed a phase time: %s", back.Phases[2].Time)
	}

	var out bytes.Buffer
	if err := printDrillReport(&out, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "drill-report.golden", out.Bytes())
}

func TestDrillReportIncomplete(t *testing.T) {
	ob := drillFixture()
	ob.takeover.Status.Timeline = ob.takeover.Status.Timeline[:2]
	ob.takeover.Status.Phase = v1alpha1.PhaseFencing
	ob.takeover.Status.MovedPods = nil
	ob.pods[0].Ready, ob.pods[0].Node, ob.pods[0].Replacement, ob.pods[0].Last = time.Time{}, "", "", "Terminating"
	ob.probe = ob.probe[:60]
	ob.problem = "timed out after 10s"
	r := buildDrillReport(ob)
	if r.Complete || r.WorkloadsReadySeconds != nil || r.AllPodsReadySeconds != nil || r.Probe.Restored != nil {
		t.Errorf("incomplete drill reported as %+v", r)
	}
	var out bytes.Buffer
	if err := printDrillReport(&out, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "drill-report-incomplete.golden", out.Bytes())
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestSummarizeProbe(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(oks ...bool) []probeSample {
		var s []probeSample
		for i, ok := range oks {
			s = append(s, probeSample{at: t0.Add(time.Duration(i) * time.Second), ok: ok})
		}
		return s
	}
	// Never failed.
	r := summarizeProbe("a:1", time.Second, mk(true, true, true), t0)
	if r.Attempts != 3 || r.Failures != 0 || r.FirstFailure != nil || r.DowntimeSeconds != nil {
		t.Errorf("no failures: %+v", r)
	}
	// Flapping: the downtime runs from the first failure to the first
	// success after the last one.
	r = summarizeProbe("a:1", time.Second, mk(true, false, false, true, false, true, true), t0)
	if r.Failures != 3 || r.DowntimeSeconds == nil || *r.DowntimeSeconds != 4 {
		t.Errorf("flapping: %+v", r)
	}
	// Not restored.
	r = summarizeProbe("a:1", time.Second, mk(true, false, false), t0)
	if r.FirstFailure == nil || r.Restored != nil || r.DowntimeSeconds != nil {
		t.Errorf("not restored: %+v", r)
	}
	// Samples before the trigger are not counted, but a failure right
	// before it is flagged.
	r = summarizeProbe("a:1", time.Second, mk(false, true, true), t0.Add(time.Second))
	if r.Attempts != 2 || r.Failures != 0 || !r.DownBeforeTrigger {
		t.Errorf("before trigger: %+v", r)
	}
	if failed, answering := probeState(mk(true, false, true), t0); !failed || !answering {
		t.Errorf("probeState = %v, %v", failed, answering)
	}
}

func TestSimulateTrigger(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "off")
	var errOut bytes.Buffer
	trig := simulateTrigger(IOStreams{ErrOut: &errOut}, "worker-1", "printf '%s' {node} > "+out)
	if err := trig.fire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "worker-1" {
		t.Errorf("command saw node %q", b)
	}
	if trig.method != "simulate" || !strings.Contains(trig.description, "'worker-1'") {
		t.Errorf("trigger %+v", trig)
	}
	if err := simulateTrigger(IOStreams{ErrOut: &errOut}, "n", "exit 3").fire(context.Background()); err == nil {
		t.Error("failing command accepted")
	}
	if got := shellQuote("a'b"); got != `'a'\''b'` {
		t.Errorf("shellQuote = %s", got)
	}
}

func TestConfirm(t *testing.T) {
	var errOut bytes.Buffer
	s := func(in string) IOStreams { return IOStreams{In: strings.NewReader(in), ErrOut: &errOut} }
	if err := confirm(s("worker-1\n"), "worker-1", "drill"); err != nil {
		t.Errorf("right name refused: %v", err)
	}
	if err := confirm(s("worker-2\n"), "worker-1", "drill"); !errors.Is(err, errNoConfirmation) {
		t.Errorf("wrong name: %v", err)
	}
	if err := confirm(s(""), "worker-1", "drill"); !errors.Is(err, errNoConfirmation) || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("no answer: %v", err)
	}
}
