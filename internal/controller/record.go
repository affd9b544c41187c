package controller

import (
	"slices"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
)

// The bounds of a Takeover's record: it must stay small (a few KB) however
// long an incident lasts and however often a step is retried, well below
// etcd's object size limit, and cheap to keep in every controller's cache.
const (
	// maxTimeline is the most entries a timeline keeps.
	maxTimeline = 32
	// maxMessage is the longest message a timeline entry keeps, in bytes.
	maxMessage = 512
	// maxStatusText is the longest status.message and status.fenceOutput,
	// in bytes.
	maxStatusText = 1024
)

// retryPhase reports whether p is a phase that repeats while an incident
// waits or retries: its repeats count on one timeline entry. The others
// (Detected, Fenced, Released, WorkloadsReady, Recovered) are milestones
// the record's meaning depends on (PhaseTime, fencedSinceDetection, the
// downtime breakdown): each is its own entry.
func retryPhase(p v1alpha1.Phase) bool {
	return p == v1alpha1.PhaseFencing || p == v1alpha1.PhaseFailed || p == v1alpha1.PhasePaused
}

// recordStep adds a phase change e to s's timeline. A change to a retry
// phase whose phase and reason repeat one of the last two entries counts
// on that entry (count, lastTime, the newest message), as long as only
// retry-phase entries lie between: a fence retried after a failure is
// "Fencing ×N, Failed ×N", never one count across a Detected or Fenced
// entry (an incident started over needs a new fence). Otherwise e is
// appended, and the timeline is cut back to maxTimeline entries.
func recordStep(s *v1alpha1.TakeoverStatus, e v1alpha1.PhaseTransition) {
	e.Message = truncate(e.Message, maxMessage)
	tl := s.Timeline
	if retryPhase(e.Phase) {
		for i := len(tl) - 1; i >= 0 && i >= len(tl)-2; i-- {
			old := &tl[i]
			if !retryPhase(old.Phase) {
				break
			}
			if old.Phase == e.Phase && old.Reason == e.Reason {
				old.Count = old.Times() + 1
				at := e.Time
				old.LastTime = &at
				old.Message = e.Message
				return
			}
		}
	}
	s.Timeline = append(tl, e)
	capTimeline(s)
}

// capTimeline drops entries, oldest first, until the timeline holds at
// most maxTimeline, and counts them in s.TimelineDropped. Retry-phase
// entries go first; an entry the record depends on is never dropped (see
// kept), and there are fewer of those than maxTimeline.
func capTimeline(s *v1alpha1.TakeoverStatus) {
	for len(s.Timeline) > maxTimeline {
		keep := kept(s.Timeline)
		drop := -1
		for i, e := range s.Timeline {
			if !keep[i] && retryPhase(e.Phase) {
				drop = i
				break
			}
		}
		if drop < 0 {
			for i := range s.Timeline {
				if !keep[i] {
					drop = i
					break
				}
			}
		}
		if drop < 0 {
			return
		}
		s.Timeline = slices.Delete(s.Timeline, drop, drop+1)
		s.TimelineDropped++
	}
}

// kept marks the timeline entries that are never dropped: the first and
// the last, the first of each phase (Takeover.PhaseTime), and the last
// Detected with the first Fenced, Released and WorkloadsReady after it
// (fencedSinceDetection and the downtime breakdown). That is at most 14
// entries.
func kept(tl []v1alpha1.PhaseTransition) []bool {
	keep := make([]bool, len(tl))
	if len(tl) == 0 {
		return keep
	}
	keep[0], keep[len(tl)-1] = true, true
	seen := map[v1alpha1.Phase]bool{}
	lastDetected := -1
	for i, e := range tl {
		if !seen[e.Phase] {
			seen[e.Phase], keep[i] = true, true
		}
		if e.Phase == v1alpha1.PhaseDetected {
			lastDetected = i
		}
	}
	if lastDetected >= 0 {
		keep[lastDetected] = true
		after := map[v1alpha1.Phase]bool{}
		for i := lastDetected + 1; i < len(tl); i++ {
			switch p := tl[i].Phase; p {
			case v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady:
				if !after[p] {
					after[p], keep[i] = true, true
				}
			}
		}
	}
	return keep
}

// truncate cuts s to at most n bytes on a rune boundary, ending it with
// "…" when it was cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// The summary conditions of a Takeover (see TakeoverStatus.Conditions).
const (
	ConditionProgressing = "Progressing"
	ConditionSucceeded   = "Succeeded"
	ConditionDegraded    = "Degraded"
	// ReasonInProgress is Succeeded's reason while it is Unknown.
	ReasonInProgress = "InProgress"
)

// setConditions sets Progressing, Succeeded and Degraded from t's phase,
// reason and timeline.
func setConditions(t *v1alpha1.Takeover, now metav1.Time) {
	s := &t.Status
	reason := s.Reason
	if reason == "" {
		reason = string(s.Phase)
	}
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: t.Generation, LastTransitionTime: now})
	}

	switch s.Phase {
	case v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased:
		set(ConditionProgressing, metav1.ConditionTrue, reason, "the takeover moves on: phase "+string(s.Phase))
	case v1alpha1.PhaseWorkloadsReady:
		set(ConditionProgressing, metav1.ConditionFalse, reason, "the takeover's steps are done; it is closed once the node is back")
	case v1alpha1.PhaseRecovered:
		set(ConditionProgressing, metav1.ConditionFalse, reason, "the incident is closed")
	default:
		set(ConditionProgressing, metav1.ConditionFalse, reason, "held: see the Degraded condition")
	}

	ready := firstEntry(s.Timeline, v1alpha1.PhaseWorkloadsReady)
	// workloadTimeout passed with some replacement not Ready: the release is
	// done, but the workloads are not all back, which is not a success.
	timedOut := ready != nil && ready.Reason == decide.ReasonWorkloadTimeout
	switch {
	case timedOut:
		set(ConditionSucceeded, metav1.ConditionFalse, ready.Reason, ready.Message)
	case ready != nil:
		set(ConditionSucceeded, metav1.ConditionTrue, ready.Reason, ready.Message)
	case s.Phase.Closed():
		set(ConditionSucceeded, metav1.ConditionFalse, reason, s.Message)
	default:
		set(ConditionSucceeded, metav1.ConditionUnknown, ReasonInProgress, "the released workloads are not back yet")
	}

	switch {
	case s.Phase == v1alpha1.PhaseFailed || s.Phase == v1alpha1.PhasePaused || s.Reason == decide.ReasonReleaseFailed:
		set(ConditionDegraded, metav1.ConditionTrue, reason, s.Message)
	case timedOut && !s.Phase.Closed():
		set(ConditionDegraded, metav1.ConditionTrue, ready.Reason, ready.Message)
	default:
		set(ConditionDegraded, metav1.ConditionFalse, reason, "no step is failing or held")
	}
}

// firstEntry is the timeline's first entry of phase p, or nil.
func firstEntry(tl []v1alpha1.PhaseTransition, p v1alpha1.Phase) *v1alpha1.PhaseTransition {
	for i := range tl {
		if tl[i].Phase == p {
			return &tl[i]
		}
	}
	return nil
}
