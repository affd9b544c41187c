package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
)

// A thousand failed fence attempts, through the real reconcile path: the
// Takeover stays a few KB, and still reads as what happened.
func TestFenceRetriesStayBounded(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.cfg.Retry = config.Retry{InitialBackoff: config.Duration{Duration: time.Second}, MaxBackoff: config.Duration{Duration: time.Second}}
	f.fencer.Set(func(fk *fence.Fake) {
		fk.Result, fk.Err = fence.Result{}, errors.New("Failed: Unable to obtain correct plug status or plug is not available")
	})
	detected := f.detect()
	const attempts = 1000
	tk := f.stepUntil(failedNode, v1alpha1.PhaseFailed, 2)
	firstFailed := f.clock.Now()
	for tk.Status.FenceAttempts < attempts {
		f.advance(time.Second)
		f.mustStep(failedNode)
		tk = f.mustTakeover(failedNode)
		if tk.Status.Phase != v1alpha1.PhaseFailed {
			t.Fatalf("attempt %d: phase %s, want Failed: %s", tk.Status.FenceAttempts, tk.Status.Phase, timeline(tk))
		}
	}
	if n := f.fencer.CallCount(); n != attempts {
		t.Fatalf("fencer called %d times, want %d", n, attempts)
	}
	f.checkNothingReleased(failedNode)

	b, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= 4096 {
		t.Errorf("after %d failed fence attempts the Takeover is %d bytes of JSON (want < 4096); %d timeline entries", attempts, len(b), len(tk.Status.Timeline))
	}
	t.Logf("after %d failed fence attempts: %d bytes of JSON, %d timeline entries", attempts, len(b), len(tk.Status.Timeline))

	checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Failed/FenceFailed")
	if tk.Status.FenceAttempts != attempts {
		t.Errorf("fenceAttempts %d, want %d", tk.Status.FenceAttempts, attempts)
	}
	det, fencing, failed := tk.Status.Timeline[0], tk.Status.Timeline[1], tk.Status.Timeline[2]
	if det.Times() != 1 || det.LastTime != nil || !det.Time.Equal(&detected.Status.Timeline[0].Time) {
		t.Errorf("Detected entry %+v changed", det)
	}
	for _, e := range []v1alpha1.PhaseTransition{fencing, failed} {
		if e.Count != attempts || e.LastTime == nil || !e.LastTime.Time.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("%s entry: count %d, lastTime %v; want %d, %v", e.Phase, e.Count, e.LastTime, attempts, f.clock.Now())
		}
	}
	if !failed.Time.Time.Equal(firstFailed) {
		t.Errorf("Failed entry's time %v, want the first failure %v", failed.Time, firstFailed)
	}
	if !strings.Contains(fencing.Message, "attempt 1000") || !strings.Contains(failed.Message, "plug is not available") {
		t.Errorf("entries do not carry the last attempt: %q, %q", fencing.Message, failed.Message)
	}
	if !strings.Contains(tk.Status.Message, "plug is not available") || tk.Status.Reason != "FenceFailed" {
		t.Errorf("status %s/%s %q does not carry the last error", tk.Status.Phase, tk.Status.Reason, tk.Status.Message)
	}

	// The fence path is repaired: the incident goes on, and the record
	// reads in order.
	f.fencer.Set(func(fk *fence.Fake) { fk.Result, fk.Err = fence.Result{Done: true, Output: "off"}, nil })
	f.advance(time.Second)
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 2)
	tk = f.stepUntil(failedNode, v1alpha1.PhaseReleased, 1)
	checkTimeline(t, tk, "Detected/LeaseExpired", "Fencing/FenceStarted", "Failed/FenceFailed", "Fenced/Fenced", "Released/Released")
	if c := tk.Status.Timeline[1].Count; c != attempts+1 {
		t.Errorf("Fencing entered %d times, want %d", c, attempts+1)
	}
	if !fencedSinceDetection(tk) {
		t.Errorf("not fenced since detection: %s", timeline(tk))
	}
}

// recordBed drives setPhase, the code path every step takes, on a stored
// Takeover, one (phase, reason) at a time, a second apart.
type recordBed struct {
	f  *fixture
	tk *v1alpha1.Takeover
}

func newRecordBed(t *testing.T) *recordBed {
	f := newFixture(t)
	tk := &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-20260301-120000"},
		Spec: v1alpha1.TakeoverSpec{NodeName: failedNode, Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "wait"}}
	f.putTakeover(tk)
	return &recordBed{f: f, tk: tk}
}

func (b *recordBed) set(phase v1alpha1.Phase, reason, msg string) {
	b.f.t.Helper()
	b.f.clock.Step(time.Second)
	if err := b.f.c.setPhase(b.f.ctx(), b.tk, phase, reason, msg); err != nil {
		b.f.t.Fatal(err)
	}
}

// steps applies "Phase/Reason" steps.
func (b *recordBed) steps(steps ...string) {
	b.f.t.Helper()
	for _, s := range steps {
		phase, reason, _ := strings.Cut(s, "/")
		b.set(v1alpha1.Phase(phase), reason, "step "+s)
	}
}

// counted is the timeline as "Phase/Reason" entries, "×N" added to an
// entry entered N > 1 times.
func counted(tk *v1alpha1.Takeover) string {
	var out []string
	for _, e := range tk.Status.Timeline {
		s := string(e.Phase) + "/" + e.Reason
		if e.Times() > 1 {
			s += fmt.Sprintf("×%d", e.Times())
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// The stored Takeover, read back.
func (b *recordBed) stored() *v1alpha1.Takeover {
	b.f.t.Helper()
	tk := &v1alpha1.Takeover{}
	if err := b.f.client.Get(b.f.ctx(), client.ObjectKeyFromObject(b.tk), tk); err != nil {
		b.f.t.Fatal(err)
	}
	return tk
}

const (
	det       = "Detected/LeaseExpired"
	fencing   = "Fencing/FenceStarted"
	fenceFail = "Failed/FenceFailed"
	fenced    = "Fenced/Fenced"
	released  = "Released/Released"
)

func TestTimelineCollapsesRetries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []string
		want  string
		// fenced is fencedSinceDetection afterwards.
		fenced bool
	}{{
		name:   "fence retries count on their entries",
		steps:  []string{det, fencing, fenceFail, fencing, fenceFail, fencing, fenced, released},
		want:   det + " " + fencing + "×3 " + fenceFail + "×2 " + fenced + " " + released,
		fenced: true,
	}, {
		name: "never across Detected: an incident started over fences anew",
		steps: []string{det, fencing, fenceFail, fencing, fenceFail,
			"Detected/Redetected", fencing, fenceFail, fencing},
		want: det + " " + fencing + "×2 " + fenceFail + "×2 Detected/Redetected " + fencing + "×2 " + fenceFail,
	}, {
		name:   "never across a milestone",
		steps:  []string{det, "Paused/StormGuard", fencing, fenced, "Paused/StormGuard", "Fenced/Fenced", "Paused/StormGuard"},
		want:   det + " Paused/StormGuard " + fencing + " " + fenced + " Paused/StormGuard " + fenced + " Paused/StormGuard",
		fenced: true,
	}, {
		name:  "a guard that holds again, two entries back",
		steps: []string{det, "Paused/StormGuard", "Paused/APIUnreliable", "Paused/StormGuard", "Paused/APIUnreliable"},
		want:  det + " Paused/StormGuard×2 Paused/APIUnreliable×2",
	}, {
		name:  "three entries back is a new entry",
		steps: []string{det, fencing, fenceFail, "Paused/MaxConcurrent", fencing, fenceFail},
		want:  det + " " + fencing + " " + fenceFail + " Paused/MaxConcurrent " + fencing + " " + fenceFail,
	}, {
		name:  "the same phase and reason as the status is no change",
		steps: []string{det, "Paused/StormGuard", "Paused/StormGuard", "Paused/StormGuard"},
		want:  det + " Paused/StormGuard",
	}, {
		name: "milestones never collapse",
		steps: []string{det, fencing, fenced, released, "WorkloadsReady/WorkloadsReady",
			"WorkloadsReady/AwaitingNodeReturn", "WorkloadsReady/AwaitingReboot", "WorkloadsReady/AwaitingNodeReturn"},
		want: det + " " + fencing + " " + fenced + " " + released +
			" WorkloadsReady/WorkloadsReady WorkloadsReady/AwaitingNodeReturn WorkloadsReady/AwaitingReboot WorkloadsReady/AwaitingNodeReturn",
		fenced: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRecordBed(t)
			b.steps(tc.steps...)
			tk := b.stored()
			if got := counted(tk); got != tc.want {
				t.Errorf("timeline\n got: %s\nwant: %s", got, tc.want)
			}
			if got := fencedSinceDetection(tk); got != tc.fenced {
				t.Errorf("fencedSinceDetection %v, want %v", got, tc.fenced)
			}
			last := tc.steps[len(tc.steps)-1]
			if got := string(tk.Status.Phase) + "/" + tk.Status.Reason; got != last || tk.Status.Message != "step "+last {
				t.Errorf("status %s %q, want the last step %s", got, tk.Status.Message, last)
			}
			// A repeated entry keeps when it was first entered, and says
			// when it was last; PhaseTime is the first time.
			start := fixtureStart
			for i, e := range tk.Status.Timeline {
				if e.Times() == 1 && e.LastTime != nil {
					t.Errorf("entry %d: lastTime %v on an entry entered once", i, e.LastTime)
				}
				if e.Times() > 1 && (e.LastTime == nil || !e.Time.Before(e.LastTime)) {
					t.Errorf("entry %d: time %v, lastTime %v", i, e.Time, e.LastTime)
				}
			}
			for i, s := range tc.steps {
				phase, _, _ := strings.Cut(s, "/")
				if pt := tk.PhaseTime(v1alpha1.Phase(phase)); !slices.ContainsFunc(tc.steps[:i], func(p string) bool { return strings.HasPrefix(p, phase+"/") }) &&
					(pt == nil || !pt.Time.Equal(start.Add(time.Duration(i+1)*time.Second))) {
					t.Errorf("PhaseTime(%s) = %v, want the step %d's time", phase, pt, i+1)
				}
			}
		})
	}
}

// A timeline that keeps growing (a retry cycle of three steps, a node
// flapping after its takeover) is cut to maxTimeline entries, dropping
// the oldest repeated steps and never what the record depends on.
func TestTimelineCapped(t *testing.T) {
	t.Run("retry cycle", func(t *testing.T) {
		b := newRecordBed(t)
		b.steps(det)
		for range 100 {
			b.steps(fencing, fenceFail, "Paused/MaxConcurrent")
		}
		b.steps(fencing, fenced, released, "WorkloadsReady/WorkloadsReady")
		tk := b.stored()
		if n := len(tk.Status.Timeline); n != maxTimeline {
			t.Fatalf("%d entries, want %d: %s", n, maxTimeline, counted(tk))
		}
		if want := int32(1 + 3*100 + 4 - maxTimeline); tk.Status.TimelineDropped != want {
			t.Errorf("timelineDropped %d, want %d", tk.Status.TimelineDropped, want)
		}
		tl := tk.Status.Timeline
		if got := counted(&v1alpha1.Takeover{Status: v1alpha1.TakeoverStatus{Timeline: tl[:4]}}); got != det+" "+fencing+" "+fenceFail+" Paused/MaxConcurrent" {
			t.Errorf("the first entries %s, want the first of each", got)
		}
		if got := counted(&v1alpha1.Takeover{Status: v1alpha1.TakeoverStatus{Timeline: tl[len(tl)-4:]}}); got != fencing+" "+fenced+" "+released+" WorkloadsReady/WorkloadsReady" {
			t.Errorf("the last entries %s", got)
		}
		if !tk.PhaseTime(v1alpha1.PhaseFencing).Time.Equal(fixtureStart.Add(2 * time.Second)) {
			t.Errorf("PhaseTime(Fencing) %v, want the first attempt", tk.PhaseTime(v1alpha1.PhaseFencing))
		}
		if !fencedSinceDetection(tk) {
			t.Error("not fenced since detection")
		}
		js, err := json.Marshal(tk)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d bytes of JSON", len(js))
	})
	t.Run("milestones only", func(t *testing.T) {
		b := newRecordBed(t)
		b.steps(det, fencing, fenced, released, "WorkloadsReady/WorkloadsReady")
		want := v1alpha1.ComputeDowntime(b.stored())
		if want == nil || want.Fence == nil || want.Release == nil {
			t.Fatalf("no downtime to compare: %+v", want)
		}
		for range 50 {
			b.steps("WorkloadsReady/AwaitingNodeReturn", "WorkloadsReady/AwaitingReboot")
		}
		b.steps("Recovered/NodeRecovered")
		tk := b.stored()
		if n := len(tk.Status.Timeline); n != maxTimeline || tk.Status.TimelineDropped != int32(5+100+1-maxTimeline) {
			t.Fatalf("%d entries, %d dropped: %s", n, tk.Status.TimelineDropped, counted(tk))
		}
		if got := counted(&v1alpha1.Takeover{Status: v1alpha1.TakeoverStatus{Timeline: tk.Status.Timeline[:5]}}); got != det+" "+fencing+" "+fenced+" "+released+" WorkloadsReady/WorkloadsReady" {
			t.Errorf("the first entries %s", got)
		}
		if got := v1alpha1.ComputeDowntime(tk); !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("downtime %+v, want %+v", got, want)
		}
		if tk.Status.Timeline[maxTimeline-1].Phase != v1alpha1.PhaseRecovered {
			t.Errorf("the last entry is %s", tk.Status.Timeline[maxTimeline-1].Phase)
		}
	})
}

// Messages are bounded: a timeline entry's to maxMessage bytes, the
// status' and the fence output to maxStatusText, cut on a rune boundary.
func TestRecordMessagesBounded(t *testing.T) {
	b := newRecordBed(t)
	long := strings.Repeat("ノードが応答しません ", 200) // 3-byte runes
	b.tk.Status.FenceOutput = strings.Repeat("x", 5000)
	b.set(v1alpha1.PhaseDetected, "LeaseExpired", long)
	tk := b.stored()
	for name, c := range map[string]struct {
		got string
		max int
	}{
		"timeline message": {tk.Status.Timeline[0].Message, maxMessage},
		"status message":   {tk.Status.Message, maxStatusText},
		"fence output":     {tk.Status.FenceOutput, maxStatusText},
	} {
		if len(c.got) > c.max || len(c.got) < c.max-8 || !utf8.ValidString(c.got) || !strings.HasSuffix(c.got, "…") {
			t.Errorf("%s: %d bytes (max %d), valid UTF-8 %v: ...%q", name, len(c.got), c.max, utf8.ValidString(c.got), c.got[max(len(c.got)-12, 0):])
		}
	}
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate cut %q", got)
	}
}

// cond is a condition as "Status/Reason", or "-" when absent.
func cond(tk *v1alpha1.Takeover, typ string) string {
	c := meta.FindStatusCondition(tk.Status.Conditions, typ)
	if c == nil {
		return "-"
	}
	return string(c.Status) + "/" + c.Reason
}

// The summary conditions after each step: Progressing, Succeeded (what
// kubectl wait --for=condition=Succeeded waits for), Degraded.
func TestTakeoverConditions(t *testing.T) {
	type after struct {
		step                             string
		progressing, succeeded, degraded string
	}
	for _, tc := range []struct {
		name  string
		steps []after
	}{{
		name: "a takeover with a fence retry",
		steps: []after{
			{det, "True/LeaseExpired", "Unknown/InProgress", "False/LeaseExpired"},
			{fencing, "True/FenceStarted", "Unknown/InProgress", "False/FenceStarted"},
			{fenceFail, "False/FenceFailed", "Unknown/InProgress", "True/FenceFailed"},
			{"Fencing/FenceStarted", "True/FenceStarted", "Unknown/InProgress", "False/FenceStarted"},
			{fenced, "True/Fenced", "Unknown/InProgress", "False/Fenced"},
			{"Fenced/ReleaseFailed", "True/ReleaseFailed", "Unknown/InProgress", "True/ReleaseFailed"},
			{released, "True/Released", "Unknown/InProgress", "False/Released"},
			{"WorkloadsReady/WorkloadsReady", "False/WorkloadsReady", "True/WorkloadsReady", "False/WorkloadsReady"},
			{"WorkloadsReady/AwaitingReboot", "False/AwaitingReboot", "True/WorkloadsReady", "False/AwaitingReboot"},
			{"Recovered/NodeRecovered", "False/NodeRecovered", "True/WorkloadsReady", "False/NodeRecovered"},
		},
	}, {
		name: "workloads timed out",
		steps: []after{
			{det, "True/LeaseExpired", "Unknown/InProgress", "False/LeaseExpired"},
			{fenced, "True/Fenced", "Unknown/InProgress", "False/Fenced"},
			{released, "True/Released", "Unknown/InProgress", "False/Released"},
			// The release is done, but not every workload is back: not a
			// success that kubectl wait --for=condition=Succeeded may report.
			{"WorkloadsReady/WorkloadTimeout", "False/WorkloadTimeout", "False/WorkloadTimeout", "True/WorkloadTimeout"},
			{"Recovered/NodeRecovered", "False/NodeRecovered", "False/WorkloadTimeout", "False/NodeRecovered"},
		},
	}, {
		name: "held, then closed before release",
		steps: []after{
			{det, "True/LeaseExpired", "Unknown/InProgress", "False/LeaseExpired"},
			{"Paused/StormGuard", "False/StormGuard", "Unknown/InProgress", "True/StormGuard"},
			{"Paused/DryRun", "False/DryRun", "Unknown/InProgress", "True/DryRun"},
			{"Recovered/HeartbeatResumed", "False/HeartbeatResumed", "False/HeartbeatResumed", "False/HeartbeatResumed"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRecordBed(t)
			var succeededAt *metav1.Time
			for _, a := range tc.steps {
				b.steps(a.step)
				tk := b.stored()
				got := []string{cond(tk, ConditionProgressing), cond(tk, ConditionSucceeded), cond(tk, ConditionDegraded)}
				if want := []string{a.progressing, a.succeeded, a.degraded}; !slices.Equal(got, want) {
					t.Errorf("after %s: Progressing, Succeeded, Degraded = %v, want %v", a.step, got, want)
				}
				if d := meta.FindStatusCondition(tk.Status.Conditions, ConditionDegraded); d.Status == metav1.ConditionTrue && d.Message != tk.Status.Message {
					t.Errorf("after %s: Degraded says %q, not the status' message %q", a.step, d.Message, tk.Status.Message)
				}
				s := meta.FindStatusCondition(tk.Status.Conditions, ConditionSucceeded)
				switch {
				case s.Status == metav1.ConditionTrue && succeededAt == nil:
					succeededAt = &s.LastTransitionTime
					if at := tk.PhaseTime(v1alpha1.PhaseWorkloadsReady); !at.Time.Equal(s.LastTransitionTime.Time) {
						t.Errorf("Succeeded since %v, WorkloadsReady at %v", s.LastTransitionTime, at)
					}
				case succeededAt != nil && !s.LastTransitionTime.Equal(succeededAt):
					t.Errorf("after %s: Succeeded's lastTransitionTime moved from %v to %v", a.step, succeededAt, s.LastTransitionTime)
				}
				if storm := cond(tk, "StormGuard"); (storm == "True/StormGuard") != (a.step == "Paused/StormGuard") {
					t.Errorf("after %s: StormGuard %s", a.step, storm)
				}
			}
		})
	}
}

// status.podsMoved follows movedPods, for kubectl's Pods column.
func TestPodsMovedCounted(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	tk := f.toReleased()
	if len(tk.Status.MovedPods) != 1 || tk.Status.PodsMoved != 1 {
		t.Fatalf("movedPods %v, podsMoved %d; want one pod counted", tk.Status.MovedPods, tk.Status.PodsMoved)
	}
}
