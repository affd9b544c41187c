package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// A retried step is one timeline entry with a count: status and the drill
// report print it as "Failed ×1000 (last 12:03:04)".
func TestTimelinePrintsRepeatedSteps(t *testing.T) {
	at := func(s string) metav1.MicroTime {
		tm, err := time.Parse(time.RFC3339, "2026-03-14T"+s+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return metav1.NewMicroTime(tm)
	}
	last := at("15:47:10")
	lastFail := at("15:47:11")
	tk := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-20260314-115840"},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "worker-1", Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "fence-agent"},
		Status: v1alpha1.TakeoverStatus{Phase: v1alpha1.PhaseFailed, Reason: "FenceFailed", FenceAttempts: 1000, TimelineDropped: 3,
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: at("11:58:40"), Reason: "LeaseExpired"},
				{Phase: v1alpha1.PhaseFencing, Time: at("11:58:40"), Reason: "FenceStarted", Message: "attempt 1000", Count: 1000, LastTime: &last},
				{Phase: v1alpha1.PhaseFailed, Time: at("11:58:50"), Reason: "FenceFailed", Message: "plug is not available", Count: 1000, LastTime: &lastFail},
			}},
	}
	var b bytes.Buffer
	if err := printTimeline(&b, at("16:00:00").Time, tk); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"  Detected  ", // entered once: no count
		"  Fencing ×1000 (last 15:47:10)   2026-03-14T11:58:40Z   +0.0s    FenceStarted   attempt 1000",
		"  Failed ×1000 (last 15:47:11)    2026-03-14T11:58:50Z   +10.0s   FenceFailed    plug is not available",
		"  (the timeline keeps at most 32 entries: 3 older ones of repeated steps were dropped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Detected ×") {
		t.Errorf("an entry entered once printed with a count:\n%s", out)
	}

	r := DrillReport{Node: "worker-1", Takeover: tk.Name}
	for _, p := range tk.Status.Timeline {
		r.Phases = append(r.Phases, DrillPhase{Phase: string(p.Phase), Reason: p.Reason, Time: p.Time.Time, Count: p.Count, LastTime: lastTime(p)})
	}
	b.Reset()
	if err := printDrillReport(&b, r); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "  Failed ×1000 (last 15:47:11)    2026-03-14T11:58:50Z") || strings.Contains(out, "Detected ×") {
		t.Errorf("drill report:\n%s", out)
	}
}
