package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) *metav1.MicroTime {
	m := metav1.NewMicroTime(t0.Add(time.Duration(s * float64(time.Second))))
	return &m
}

func tl(entries ...any) []PhaseTransition {
	var out []PhaseTransition
	for i := 0; i < len(entries); i += 2 {
		out = append(out, PhaseTransition{Phase: entries[i].(Phase), Time: *at(entries[i+1].(float64))})
	}
	return out
}

func moved(owner string, scheduled, ready *metav1.MicroTime) MovedPod {
	return MovedPod{Namespace: "db", Name: "p", OwnerKind: owner, ScheduledTime: scheduled, ReadyTime: ready}
}

// want lists the parts in Parts order (detection, fence, release,
// schedule, start, total) in seconds; -1 for a part left out.
type want [6]float64

func TestComputeDowntime(t *testing.T) {
	full := tl(PhaseDetected, 40.5, PhaseFencing, 40.6, PhaseFenced, 45.6, PhaseReleased, 45.8, PhaseWorkloadsReady, 48.0)
	cases := []struct {
		name  string
		hb    *metav1.MicroTime
		tl    []PhaseTransition
		moved []MovedPod
		want  want
	}{
		{"one StatefulSet pod", at(0), full, []MovedPod{moved("StatefulSet", at(46.1), at(47.9))},
			want{40.5, 5.1, 0.2, 0.3, 1.8, 47.9}},
		{"several moved pods: the last scheduled and the last Ready count", at(0), full, []MovedPod{
			moved("StatefulSet", at(46.1), at(47.9)),
			moved("ReplicaSet", at(46.5), at(47.0)),
			moved("StatefulSet", at(46.0), at(47.5)),
		}, want{40.5, 5.1, 0.2, 0.7, 1.4, 47.9}},
		{"no lastHeartbeatSeen (written by an older controller)", nil, full, []MovedPod{moved("StatefulSet", at(46.1), at(47.9))},
			want{-1, 5.1, 0.2, 0.3, 1.8, -1}},
		{"no scheduled time: schedule and start left out", at(0), full, []MovedPod{moved("StatefulSet", nil, at(47.9))},
			want{40.5, 5.1, 0.2, -1, -1, 47.9}},
		{"a replacement never Ready: the total ends at WorkloadsReady", at(0), full, []MovedPod{
			moved("StatefulSet", at(46.1), at(47.0)), moved("StatefulSet", at(46.2), nil),
		}, want{40.5, 5.1, 0.2, 0.4, 0.8, 48.0}},
		{"nothing moved: the total ends at WorkloadsReady", at(0), full, nil, want{40.5, 5.1, 0.2, -1, -1, 48.0}},
		{"a pod without owner is not waited for", at(0), full, []MovedPod{moved("", nil, nil), moved("StatefulSet", at(46.1), at(47.9))},
			want{40.5, 5.1, 0.2, 0.3, 1.8, 47.9}},
		{"still fencing", at(0), tl(PhaseDetected, 40.5, PhaseFencing, 40.6), nil, want{40.5, -1, -1, -1, -1, -1}},
		{"clock skew between two leaders never yields a negative part", at(41), tl(PhaseDetected, 40.5, PhaseFenced, 40.0,
			PhaseReleased, 45.8, PhaseWorkloadsReady, 48.0), []MovedPod{moved("StatefulSet", at(45.0), at(47.9))},
			want{0, 0, 5.8, 0, 2.9, 6.9}},
		{"started over: the parts count from the last Detected", at(30), tl(PhaseDetected, 10.0, PhaseFencing, 10.1, PhaseFailed, 11.0,
			PhaseDetected, 40.5, PhaseFencing, 40.6, PhaseFenced, 45.6, PhaseReleased, 45.8, PhaseWorkloadsReady, 48.0),
			[]MovedPod{moved("StatefulSet", at(46.1), at(47.9))}, want{10.5, 5.1, 0.2, 0.3, 1.8, 17.9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := &Takeover{Status: TakeoverStatus{LastHeartbeatSeen: c.hb, Timeline: c.tl, MovedPods: c.moved}}
			d := ComputeDowntime(tk)
			if d == nil {
				t.Fatal("no breakdown")
			}
			for i, p := range d.Parts() {
				switch {
				case c.want[i] < 0 && p.Duration != nil:
					t.Errorf("%s = %s, want it left out", p.Name, p.Duration.Duration)
				case c.want[i] >= 0 && p.Duration == nil:
					t.Errorf("%s left out, want %.1fs", p.Name, c.want[i])
				case c.want[i] >= 0 && p.Duration.Duration != time.Duration(c.want[i]*float64(time.Second)).Round(time.Millisecond):
					t.Errorf("%s = %s, want %.1fs", p.Name, p.Duration.Duration, c.want[i])
				case p.Duration != nil && p.Duration.Duration < 0:
					t.Errorf("%s is negative: %s", p.Name, p.Duration.Duration)
				}
			}
		})
	}
}

func TestComputeDowntimeNothingRecorded(t *testing.T) {
	if d := ComputeDowntime(&Takeover{}); d != nil {
		t.Fatalf("breakdown of an empty Takeover: %+v", d)
	}
	if d := ComputeDowntime(nil); d != nil {
		t.Fatalf("breakdown of nil: %+v", d)
	}
}

func TestDowntimeSummary(t *testing.T) {
	tk := &Takeover{Status: TakeoverStatus{LastHeartbeatSeen: at(0),
		Timeline: tl(PhaseDetected, 40.5, PhaseFenced, 45.6, PhaseReleased, 45.8, PhaseWorkloadsReady, 48.0)}}
	got := ComputeDowntime(tk).Summary()
	want := "detection 40.5s, fence 5.1s, release 0.2s, schedule -, start -, total 48.0s"
	if got != want {
		t.Fatalf("Summary() = %q, want %q", got, want)
	}
	if v, ok := ComputeDowntime(tk).Get("fence"); !ok || v != 5100*time.Millisecond {
		t.Fatalf("Get(fence) = %s, %v", v, ok)
	}
	if _, ok := ComputeDowntime(tk).Get("start"); ok {
		t.Fatal("Get(start) found a part left out")
	}
}
