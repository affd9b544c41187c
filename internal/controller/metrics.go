package controller

import (
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
)

// observeTransition records a phase change of t in the metrics: the
// transition by phase and result, the time from the node's last heartbeat
// seen (the incident's detection when none was seen) to the phase, and,
// for an incident closed without a release, the aborted takeover.
func (c *Controller) observeTransition(t *v1alpha1.Takeover, phase v1alpha1.Phase, reason string, now time.Time) {
	c.m.Transitions.WithLabelValues(string(phase), resultOf(phase, reason)).Inc()
	if phase != v1alpha1.PhasePaused && phase != v1alpha1.PhaseFailed {
		if from, ok := phaseClockStart(t); ok {
			c.m.PhaseSeconds.WithLabelValues(string(phase)).Observe(max(now.Sub(from), 0).Seconds())
		}
	}
	if phase.Closed() && t.PhaseTime(v1alpha1.PhaseReleased) == nil {
		c.m.TakeoversFinished.WithLabelValues("aborted").Inc()
	}
}

// observeFinished records a takeover that reached WorkloadsReady (result
// succeeded, or timeout when workloadTimeout passed with some replacement
// not Ready), with
// its downtime and the downtime's parts (d is status.downtime, computed
// once, then).
func (c *Controller) observeFinished(reason string, d *v1alpha1.Downtime) {
	result := "succeeded"
	if reason == decide.ReasonWorkloadTimeout {
		result = "timeout"
	}
	c.m.TakeoversFinished.WithLabelValues(result).Inc()
	for _, p := range d.Parts() {
		switch {
		case p.Duration == nil:
		case p.Name == "total":
			c.m.Downtime.Observe(p.Duration.Seconds())
		default:
			c.m.DowntimeParts.WithLabelValues(p.Name).Observe(p.Duration.Seconds())
		}
	}
}

// phaseClockStart is when the phase durations of t count from: the last
// heartbeat seen, or else the incident's (last) detection.
func phaseClockStart(t *v1alpha1.Takeover) (time.Time, bool) {
	if hb := t.Status.LastHeartbeatSeen; hb != nil {
		return hb.Time, true
	}
	var det *time.Time
	for i := range t.Status.Timeline {
		if e := &t.Status.Timeline[i]; e.Phase == v1alpha1.PhaseDetected {
			det = &e.Time.Time
		}
	}
	if det == nil {
		return time.Time{}, false
	}
	return *det, true
}
