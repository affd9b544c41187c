package v1alpha1

import (
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ComputeDowntime breaks t's downtime into its parts (see Downtime) from
// the instants t records: lastHeartbeatSeen, the timeline since the last
// Detected entry (an incident started over counts from its new start), and
// the moved pods' scheduled and Ready times. A part is left out when one
// of its ends is missing; it returns nil when no part can be computed.
func ComputeDowntime(t *Takeover) *Downtime {
	if t == nil {
		return nil
	}
	det, fenced, released, done := incidentTimes(t.Status.Timeline)
	scheduled, ready, allReady := replacementTimes(t.Status.MovedPods)
	end := done
	if allReady {
		end = ready
	}
	hb := t.Status.LastHeartbeatSeen
	d := &Downtime{
		Total:     span(hb, end),
		Detection: span(hb, det),
		Fence:     span(det, fenced),
		Release:   span(fenced, released),
		Schedule:  span(released, scheduled),
		Start:     span(scheduled, ready),
	}
	if *d == (Downtime{}) {
		return nil
	}
	return d
}

// incidentTimes returns when the timeline's last Detected entry was
// written, and the first Fenced, Released and WorkloadsReady after it.
func incidentTimes(tl []PhaseTransition) (det, fenced, released, done *metav1.MicroTime) {
	start := -1
	for i := range tl {
		if tl[i].Phase == PhaseDetected {
			start = i
		}
	}
	if start < 0 {
		return nil, nil, nil, nil
	}
	det = &tl[start].Time
	for i := start + 1; i < len(tl); i++ {
		at := &tl[i].Time
		switch {
		case tl[i].Phase == PhaseFenced && fenced == nil:
			fenced = at
		case tl[i].Phase == PhaseReleased && released == nil:
			released = at
		case tl[i].Phase == PhaseWorkloadsReady && done == nil:
			done = at
		}
	}
	return det, fenced, released, done
}

// replacementTimes returns the latest scheduled and Ready times of the
// moved pods' replacements, and whether every pod with an owner (one that
// is recreated) has a Ready replacement.
func replacementTimes(moved []MovedPod) (scheduled, ready *metav1.MicroTime, allReady bool) {
	tracked := 0
	allReady = true
	for i := range moved {
		m := &moved[i]
		scheduled = latest(scheduled, m.ScheduledTime)
		ready = latest(ready, m.ReadyTime)
		if m.OwnerKind == "" {
			continue
		}
		tracked++
		if m.ReadyTime == nil {
			allReady = false
		}
	}
	return scheduled, ready, allReady && tracked > 0
}

func latest(a, b *metav1.MicroTime) *metav1.MicroTime {
	if b == nil || (a != nil && !a.Before(b)) {
		return a
	}
	return b
}

// span is the time from a to b to the millisecond, never negative; nil
// when either is missing.
func span(a, b *metav1.MicroTime) *metav1.Duration {
	if a == nil || b == nil {
		return nil
	}
	return &metav1.Duration{Duration: max(b.Sub(a.Time), 0).Round(time.Millisecond)}
}

// DowntimePart is one named part of a Downtime.
// +kubebuilder:object:generate=false
type DowntimePart struct {
	Name string
	// Duration is nil when the part was not recorded.
	Duration *metav1.Duration
}

// Parts returns the parts in the order they happen, then the total.
func (d *Downtime) Parts() []DowntimePart {
	if d == nil {
		d = &Downtime{}
	}
	return []DowntimePart{
		{"detection", d.Detection}, {"fence", d.Fence}, {"release", d.Release},
		{"schedule", d.Schedule}, {"start", d.Start}, {"total", d.Total},
	}
}

// Seconds formats a part's duration in seconds with one decimal ("40.2s"),
// "-" when it was not recorded.
func (p DowntimePart) Seconds() string {
	if p.Duration == nil {
		return "-"
	}
	return strconv.FormatFloat(p.Duration.Seconds(), 'f', 1, 64) + "s"
}

// Summary is the breakdown on one line: "detection 40.2s, fence 5.0s,
// release 0.1s, schedule 0.3s, start 1.2s, total 46.8s".
func (d *Downtime) Summary() string {
	parts := d.Parts()
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.Name + " " + p.Seconds()
	}
	return strings.Join(out, ", ")
}

// Get returns the named part's duration (0 and false when not recorded).
func (d *Downtime) Get(name string) (time.Duration, bool) {
	for _, p := range d.Parts() {
		if p.Name == name && p.Duration != nil {
			return p.Duration.Duration, true
		}
	}
	return 0, false
}
