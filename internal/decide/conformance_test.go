package decide

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/fence"
)

// The conformance test: the code takes the transition model/takeover.pml
// takes (model/states.md lists the rows, model/README.md explains the
// model). TestConformanceRows drives one representative state per row of
// states.md; TestConformanceAll drives every combination of the abstract
// inputs through both the code and modelStep, a line-by-line transcription
// of step(i) in takeover.pml.

// phase is the model's ph.
type phase int

const (
	pNone      phase = iota // P_NONE
	pDetected               // P_DETECTED (also Failed, and Paused before a fence)
	pFencing                // P_FENCING (provider wait counting)
	pFenced                 // P_FENCED (also a Paused fenced incident)
	pReleasing              // P_RELEASING (ReleaseStarted)
	pReleased               // P_RELEASED (also WorkloadsReady)
	pDone                   // P_DONE (Recovered)
)

func (p phase) String() string {
	return [...]string{"None", "Detected", "Fencing", "Fenced", "Releasing", "Released", "Recovered"}[p]
}

type class int

const (
	classPower class = iota // CLASS == POWER
	classWait               // CLASS == WAIT
	classNone               // CLASS == NONE
)

func (c class) String() string { return [...]string{"power", "wait", "none"}[c] }

// abstract is one state of the model as the leader replica i sees it when it
// steps: the inputs of step(i).
type abstract struct {
	phase   phase
	exists  bool  // ex
	window  bool  // age[i] >= W: the whole window passed with no heartbeat change seen on this leader's clock
	cache   bool  // cd[i]: the cache shows a heartbeat other than the detection fingerprint
	live    bool  // fpchg: a live read shows one (for a deleted Node: its Lease)
	storm   bool  // storm(i): unhealthy + suspect > maxUnhealthy
	blind   bool  // blind(i): the view is blind
	safe    bool  // wt[i] >= WAIT_T: the wait provider's safe time passed on this leader's clock
	repl    bool  // repl: the replacement runs (Ready) elsewhere
	newboot bool  // newboot: the node's bootID differs from the one at detection
	cls     class // CLASS
	api     bool  // api_up: the controller's API calls succeed
}

func (s abstract) String() string {
	return fmt.Sprintf("{phase %s exists %t window %t cache-changed %t live-changed %t storm %t blind %t safe-time %t replacement %t new-boot %t class %s api %t}",
		s.phase, s.exists, s.window, s.cache, s.live, s.storm, s.blind, s.safe, s.repl, s.newboot, s.cls, s.api)
}

// The model's outcome that is not an Action of the code: Fenced (the wait
// provider's safe time passed). Redetect (redetect() in takeover.pml) is
// the code's Redetect.
const (
	fencedAction   Action = "Fenced"
	redetectAction        = Redetect
)

// modelStep is step(i) of model/takeover.pml, transcribed: each case names
// the guard it copies. It returns the row of model/states.md and the action.
func modelStep(s abstract) (string, Action) {
	if !s.api { // proctype Ctl: lead[i] && api_up -> step(i)
		return "A1", None
	}
	guard := s.blind || s.storm // #define guard(i) (blind(i) || storm(i))
	switch {
	case s.phase == pNone: // :: ph == P_NONE ->
		switch {
		case !s.exists: // :: !ex
			return "N3", None
		case !s.window: // :: ex && age[i] < W
			return "N2", None
		case s.blind: // :: ex && age[i] >= W && blind(i)
			return "N4", None
		default: // :: ex && age[i] >= W && !blind(i) ->
			return "N1", Open
		}
	case s.phase == pDone: // :: ph == P_DONE -> skip
		return "C1", None
	case s.phase == pReleased: // :: ph == P_RELEASED ->
		switch {
		case !s.repl: // :: !repl
			return "D1", TrackWorkloads
		case s.exists && s.cache && !s.window && (s.newboot || s.cls == classNone): // :: repl && ex && cd[i] && age[i] < W && (newboot || CLASS == NONE) ->
			return "D2", Recover
		default: // :: else
			return "D3", None
		}
	case s.phase == pReleasing: // :: ph == P_RELEASING ->
		if s.blind { // :: blind(i)
			return "R1", Pause
		}
		return "R2", Release // :: else -> assert(S2); bound = 0; ph = P_RELEASED
	case s.exists: // :: prerel && ex ->
		switch {
		case s.cache: // :: cd[i] ->
			if s.live { // :: fpchg -> abort_incident()
				return "P1", Abort
			}
			return "P2", None // :: else -> cd[i] = 0
		case guard: // :: !cd[i] && guard(i)
			return "P3", Pause
		case s.phase == pFenced: // :: !cd[i] && !guard(i) && ph == P_FENCED ->
			if s.live { // :: fpchg -> abort_incident()
				return "F1", Abort
			}
			return "F2", Release // :: else -> release_start()
		case !s.window: // :: !cd[i] && !guard(i) && ph != P_FENCED && age[i] < W
			if s.phase == pFencing {
				return "W1", None
			}
			return "E1", None
		case s.phase == pFencing: // :: !cd[i] && !guard(i) && ph == P_FENCING && age[i] >= W ->
			if s.safe { // :: wt[i] >= WAIT_T -> fenced = 1; ph = P_FENCED
				return "W3", fencedAction
			}
			return "W2", None // :: else
		default: // :: !cd[i] && !guard(i) && ph == P_DETECTED && age[i] >= W ->
			if s.live { // :: fpchg -> abort_incident()
				return "E2", Abort
			}
			return [...]string{"E3", "E4", "E5"}[s.cls], Fence // :: else -> fence_start(i)
		}
	default: // :: prerel && !ex ->
		switch {
		case guard: // :: guard(i)
			return "G1", Pause
		case s.phase == pFenced: // :: !guard(i) && ph == P_FENCED ->
			if s.live { // :: fpchg -> redetect()
				return "G2", redetectAction
			}
			return "G3", Release // :: else -> release_start()
		case !s.window: // :: !guard(i) && ph != P_FENCED && age[i] < W
			return "G4", None
		case s.phase == pFencing: // :: !guard(i) && ph == P_FENCING && age[i] >= W ->
			if s.safe { // :: wt[i] >= WAIT_T -> fenced = 1; ph = P_FENCED
				return "G5", fencedAction
			}
			return "G6", None // :: else
		default: // :: !guard(i) && ph == P_DETECTED && age[i] >= W ->
			if s.live { // :: fpchg -> redetect()
				return "G7", redetectAction
			}
			return "G8", Fence // :: else -> fence_start(i)
		}
	}
}

// The concrete values behind the abstract ones.
const (
	confWindow   = 40 * time.Second
	confSafeTime = 30 * time.Second
)

func confPolicy() Policy {
	return Policy{UnhealthyAfter: confWindow, HealthyDelay: 30 * time.Second, MaxUnhealthy: 2, MaxConcurrent: 1}
}

// variants are the concrete incidents one abstract state's phase stands for.
func variants(s abstract) []*Incident {
	base := func(ph Phase) *Incident { return &Incident{Phase: ph, NodeUID: "uid-1", BootID: "boot-1"} }
	switch s.phase {
	case pDetected:
		failed := base(PhaseFailed)
		failed.FenceAttempts = 1 // NextRetry passed: the retry may start
		return []*Incident{base(PhaseDetected), failed, base(PhasePaused)}
	case pFencing:
		return []*Incident{base(PhaseFencing)}
	case pFenced:
		fenced, paused := base(PhaseFenced), base(PhasePaused)
		fenced.Fenced, paused.Fenced = true, true
		return []*Incident{fenced, paused}
	case pReleasing:
		inc := base(PhaseFenced)
		inc.Fenced, inc.ReleaseStarted = true, true
		return []*Incident{inc}
	case pReleased:
		released, ready := base(PhaseReleased), base(PhaseWorkloadsReady)
		for _, inc := range []*Incident{released, ready} {
			inc.Fenced, inc.ReleaseStarted, inc.Released = true, true, true
		}
		ready.WorkloadsReady = true
		if !s.repl { // WorkloadsReady is recorded once the replacement is Ready
			return []*Incident{released}
		}
		return []*Incident{released, ready}
	case pDone:
		inc := base(PhaseRecovered)
		inc.Fenced, inc.Released, inc.WorkloadsReady = true, true, true
		return []*Incident{inc}
	}
	return []*Incident{nil}
}

// concrete builds what the controller would pass decide for s (as input()
// in internal/controller/reconcile.go builds it), and the live re-read.
func concrete(s abstract, inc *Incident) (Input, Live) {
	provider := [...]string{"redfish", "wait", "none"}[s.cls]
	// The model's CLASS NONE is a none class with releaseUnproven: true
	// (released without proof, flagged). A none class without it waits for
	// an operator's confirm-off, which the model takes as a power fence's
	// proof (model/README.md).
	n := Node{Name: "worker-1", Exists: s.exists, HasLease: true, LeaseStaleFor: 10 * time.Second, FenceProvider: provider, ReleaseUnproven: s.cls == classNone}
	if s.window {
		n.LeaseStaleFor = time.Minute
	}
	if s.exists {
		n.UID, n.Eligible, n.BootID = "uid-1", true, "boot-1"
		if s.newboot {
			n.BootID = "boot-2"
		}
		n.Ready = !s.window
		if s.cache && !s.window { // a renewal seen, and healthy since
			n.HealthyFor = time.Hour
		}
		// reconcile.go heartbeatChanged: false without a cached Node.
		n.HeartbeatChanged = inc != nil && s.cache
	}
	if inc != nil && inc.Released {
		inc.RebootRequired = s.cls != classNone // fence.go fenced: res.PowerOff || provider != none
	}
	c := Cluster{Eligible: 10, Unhealthy: 1, APIHealthy: s.api, Blind: s.blind}
	if s.storm {
		c.Suspect = 2 // 1 + 2 > MaxUnhealthy 2
	}
	live := Live{HeartbeatChanged: s.live} // a deleted Node: its Lease, read live (release.LiveLease)
	if s.exists {
		live = Live{Exists: true, UID: "uid-1", HeartbeatChanged: s.live}
	}
	return Input{Now: t0, Node: n, Incident: inc, Cluster: c, Policy: confPolicy()}, live
}

// codeStep is what the controller does for s: Decide, then where the
// decision reads live or calls a provider, the function that decides on it
// (reconcile.go reconcile, actions.go confirmResumed, fence.go
// startFencing and callFencer, release.go release, track.go).
func codeStep(s abstract, inc *Incident) Decision {
	in, live := concrete(s, inc)
	d := Decide(in)
	switch d.Action {
	case Abort:
		if d.Reason == ReasonHeartbeatResumed {
			return ConfirmResumed(inc, live)
		}
	case Fence:
		if inc.Phase != PhaseFencing {
			if b := BeforeFence(inc, live); b.Action != Fence {
				return b
			}
			return d // the provider starts: power off, Fencing, or FencedUnsafe
		}
		// Fencing: the wait provider again, its safe time on this process's clock.
		since := 5 * time.Second
		if s.safe {
			since = time.Minute
		}
		res, err := fence.Wait{SafeTime: confSafeTime}.Fence(context.Background(), fence.Target{Node: "worker-1", DetectedAt: t0.Add(-since), Now: t0})
		if err != nil || !res.Done {
			return Decision{Action: None, Reason: "waiting"}
		}
		return Decision{Action: fencedAction, Reason: ReasonFenced}
	case Release:
		return BeforeRelease(inc, live)
	case TrackWorkloads:
		w := Workloads{Moved: 1, SinceRelease: time.Minute, Timeout: time.Hour}
		if !s.repl {
			w.Waiting = []string{"db/mysql-0"}
		}
		if t := TrackDecision(w); t.Action != WorkloadsDone {
			return t
		}
		ready := *inc
		ready.WorkloadsReady = true
		in.Incident = &ready
		return Decide(in)
	}
	return d
}

// knownDefects are the combinations where the code differs from the model
// and the code is wrong (none now; model/README.md lists the fixed ones): keyed by row, the
// code's action today. The test fails once the code agrees, so the entry
// is removed with the fix.
var knownDefects = map[string]Action{}

func TestConformanceRows(t *testing.T) {
	up := abstract{api: true, exists: true}
	with := func(f func(*abstract)) abstract { s := up; f(&s); return s }
	rows := []struct {
		row  string
		s    abstract
		want Action
	}{
		{"N1", with(func(s *abstract) { s.window = true }), Open},
		{"N2", up, None},
		{"N3", with(func(s *abstract) { s.exists = false; s.window = true }), None},
		{"N4", with(func(s *abstract) { s.window, s.blind = true, true }), None},
		{"C1", with(func(s *abstract) { s.phase = pDone }), None},
		{"D1", with(func(s *abstract) { s.phase = pReleased }), TrackWorkloads},
		{"D2", with(func(s *abstract) { s.phase, s.repl, s.cache, s.newboot = pReleased, true, true, true }), Recover},
		{"D3", with(func(s *abstract) { s.phase, s.repl, s.cache = pReleased, true, true }), None},
		{"R1", with(func(s *abstract) { s.phase, s.blind = pReleasing, true }), Pause},
		{"R2", with(func(s *abstract) { s.phase, s.storm, s.cache, s.live = pReleasing, true, true, true }), Release},
		{"P1", with(func(s *abstract) { s.phase, s.cache, s.live = pFenced, true, true }), Abort},
		{"P2", with(func(s *abstract) { s.phase, s.cache, s.window = pDetected, true, true }), None},
		{"P3", with(func(s *abstract) { s.phase, s.storm, s.window = pDetected, true, true }), Pause},
		{"F1", with(func(s *abstract) { s.phase, s.live = pFenced, true }), Abort},
		{"F2", with(func(s *abstract) { s.phase = pFenced }), Release},
		{"W1", with(func(s *abstract) { s.phase, s.cls, s.safe = pFencing, classWait, true }), None},
		{"W2", with(func(s *abstract) { s.phase, s.cls, s.window = pFencing, classWait, true }), None},
		{"W3", with(func(s *abstract) { s.phase, s.cls, s.window, s.safe = pFencing, classWait, true, true }), fencedAction},
		{"E1", with(func(s *abstract) { s.phase = pDetected }), None},
		{"E2", with(func(s *abstract) { s.phase, s.window, s.live = pDetected, true, true }), Abort},
		{"E3", with(func(s *abstract) { s.phase, s.window = pDetected, true }), Fence},
		{"E4", with(func(s *abstract) { s.phase, s.window, s.cls = pDetected, true, classWait }), Fence},
		{"E5", with(func(s *abstract) { s.phase, s.window, s.cls = pDetected, true, classNone }), Fence},
		{"G1", with(func(s *abstract) { s.phase, s.exists, s.window, s.blind = pDetected, false, true, true }), Pause},
		{"G2", with(func(s *abstract) { s.phase, s.exists, s.live = pFenced, false, true }), redetectAction},
		{"G3", with(func(s *abstract) { s.phase, s.exists = pFenced, false }), Release},
		{"G4", with(func(s *abstract) { s.phase, s.exists = pDetected, false }), None},
		{"G5", with(func(s *abstract) { s.phase, s.exists, s.cls, s.window, s.safe = pFencing, false, classWait, true, true }), fencedAction},
		{"G6", with(func(s *abstract) { s.phase, s.exists, s.cls, s.window = pFencing, false, classWait, true }), None},
		{"G7", with(func(s *abstract) { s.phase, s.exists, s.window, s.live = pDetected, false, true, true }), redetectAction},
		{"G8", with(func(s *abstract) { s.phase, s.exists, s.window = pDetected, false, true }), Fence},
		{"A1", with(func(s *abstract) { s.phase, s.window, s.api = pDetected, true, false }), None},
	}
	for _, r := range rows {
		t.Run(r.row, func(t *testing.T) {
			if row, act := modelStep(r.s); row != r.row || act != r.want {
				t.Fatalf("the table and modelStep disagree on %v: modelStep gives %s %s, the table %s %s", r.s, row, act, r.row, r.want)
			}
			for _, inc := range variants(r.s) {
				check(t, r.row, r.s, inc, r.want)
			}
		})
	}
}

// check compares the code's decision for s (on the concrete incident inc)
// with the model's action want.
func check(t *testing.T, row string, s abstract, inc *Incident, want Action) {
	t.Helper()
	phaseName := "none"
	if inc != nil {
		phaseName = string(inc.Phase)
		inc = copyIncident(inc)
	}
	got := codeStep(s, inc)
	if !s.api {
		// The model takes no step. The code must not act: nothing is
		// opened, fenced or released (what remains, a live read, a status
		// write, fails with the API).
		if got.Action == Open || got.Action == Fence || got.Action == Release || got.Action == fencedAction ||
			(got.Action == Abort && got.Reason != ReasonHeartbeatResumed) {
			t.Errorf("%s %v (%s): API failing, the code does %s/%s", row, s, phaseName, got.Action, got.Reason)
		}
		return
	}
	if code, known := knownDefects[row]; known {
		if got.Action != code {
			t.Errorf("%s %v (%s): known defect no longer reproduces (code %s/%s, model %s): remove it from knownDefects and model/README.md", row, s, phaseName, got.Action, got.Reason, want)
		}
		return
	}
	if got.Action != want {
		t.Errorf("%s %v (%s): code %s/%s (%s), model %s", row, s, phaseName, got.Action, got.Reason, got.Message, want)
	}
}

func copyIncident(inc *Incident) *Incident { c := *inc; return &c }

// TestConformanceAll drives every combination of the abstract inputs
// through the code and the model's step; every row of the model must be
// reached.
func TestConformanceAll(t *testing.T) {
	bools := []bool{false, true}
	seen := map[string]int{}
	combos, concrete := 0, 0
	for _, ph := range []phase{pNone, pDetected, pFencing, pFenced, pReleasing, pReleased, pDone} {
		for _, cls := range []class{classPower, classWait, classNone} {
			if ph == pFencing && cls != classWait {
				continue // only the wait provider counts in Fencing
			}
			for _, ex := range bools {
				for _, win := range bools {
					for _, cache := range bools {
						for _, live := range bools {
							for _, storm := range bools {
								for _, blind := range bools {
									for _, safe := range bools {
										for _, repl := range bools {
											for _, nb := range bools {
												for _, api := range bools {
													s := abstract{phase: ph, exists: ex, window: win, cache: cache, live: live, storm: storm,
														blind: blind, safe: safe, repl: repl, newboot: nb, cls: cls, api: api}
													row, want := modelStep(s)
													seen[row]++
													combos++
													for _, inc := range variants(s) {
														concrete++
														check(t, row, s, inc, want)
													}
												}
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	for _, row := range []string{"N1", "N2", "N3", "N4", "C1", "D1", "D2", "D3", "R1", "R2", "P1", "P2", "P3", "F1", "F2",
		"W1", "W2", "W3", "E1", "E2", "E3", "E4", "E5", "G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "A1"} {
		if seen[row] == 0 {
			t.Errorf("row %s of model/states.md is reached by no combination", row)
		}
	}
	if len(seen) != 32 {
		t.Errorf("modelStep reaches %d rows, states.md lists 32", len(seen))
	}
	t.Logf("%d abstract combinations, %d concrete inputs, %d rows", combos, concrete, len(seen))
}
