package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func tk(name string, at time.Time, phase Phase) Takeover {
	t := Takeover{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(at)}}
	t.Status.Phase = phase
	return t
}

func TestOpenTakeover(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		items []Takeover
		want  string
	}{
		{"none", nil, ""},
		{"all closed", []Takeover{tk("a", t0, PhaseRecovered)}, ""},
		{"newest open wins over an older open", []Takeover{tk("new", t0.Add(time.Second), PhaseFenced), tk("old", t0, PhaseDetected)}, "new"},
		{"order of the list does not matter", []Takeover{tk("old", t0, PhaseDetected), tk("new", t0.Add(time.Second), PhaseFenced)}, "new"},
		{"a newer closed one does not hide an open one", []Takeover{tk("open", t0, PhasePaused), tk("closed", t0.Add(time.Minute), PhaseRecovered)}, "open"},
		{"same second: the greater name", []Takeover{tk("n-1", t0, PhaseDetected), tk("n-2", t0, PhaseDetected)}, "n-2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := OpenTakeoverOf(c.items)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != c.want {
				t.Fatalf("OpenTakeoverOf = %q, want %q", name, c.want)
			}
		})
	}
}
