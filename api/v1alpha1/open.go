package v1alpha1

// Newer reports whether a was created after b (by creation time, then by
// name, so that the order is total).
func Newer(a, b *Takeover) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if ta.Equal(&tb) {
		return a.Name > b.Name
	}
	return tb.Before(&ta)
}

// OpenTakeover returns the open incident among one node's Takeovers: the
// newest that is not closed, or nil. The controller's cache, its live reads
// and the operator commands all answer "the open Takeover of a node" with
// this one function.
func OpenTakeover(items []*Takeover) *Takeover {
	var open *Takeover
	for _, t := range items {
		if t == nil || t.Status.Phase.Closed() {
			continue
		}
		if open == nil || Newer(t, open) {
			open = t
		}
	}
	return open
}

// OpenTakeoverOf is OpenTakeover over a list's items.
func OpenTakeoverOf(items []Takeover) *Takeover {
	ptrs := make([]*Takeover, len(items))
	for i := range items {
		ptrs[i] = &items[i]
	}
	return OpenTakeover(ptrs)
}

// FencedSinceDetection reports whether the timeline holds Fenced after its
// last Detected entry (an incident started over by a redetection needs a
// new fence).
func (t *Takeover) FencedSinceDetection() bool {
	fenced := false
	for _, e := range t.Status.Timeline {
		switch e.Phase {
		case PhaseDetected:
			fenced = false
		case PhaseFenced:
			fenced = true
		}
	}
	return fenced
}
