package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/fence"
)

// reloaded returns a copy of the fixture's configuration changed by edit
// and validated, as a reload would hand it to SetConfig.
func (f *fixture) reloaded(edit func(*config.Config)) *config.Config {
	f.t.Helper()
	next := *f.c.Config()
	next.Fencing.Classes = append([]config.FenceClass(nil), next.Fencing.Classes...)
	edit(&next)
	if err := next.Validate(); err != nil {
		f.t.Fatalf("the reloaded configuration is invalid: %v", err)
	}
	return &next
}

func (f *fixture) setConfig(edit func(*config.Config)) {
	f.t.Helper()
	if err := f.c.SetConfig(f.reloaded(edit)); err != nil {
		f.t.Fatalf("SetConfig: %v", err)
	}
}

// pendingFence makes the fence calls not finish (the provider says: later).
func (f *fixture) pendingFence() {
	f.fencer.Result = fence.Result{RetryAfter: 5 * time.Second, Output: "waiting"}
}

// A fence class removed by a reload while its incident is Fencing: the
// incident is held (Paused, Unfenceable), never counted as fenced and
// nothing is released; the class back, the fence goes on.
func TestReloadClassRemovedWhileFencing(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.pendingFence()
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFencing, 2)
	calls := len(f.fencer.Calls)

	f.setConfig(func(c *config.Config) { c.Fencing.Classes = nil })
	tk := f.stepUntil(failedNode, v1alpha1.PhasePaused, 2)
	if tk.Status.Reason != decide.ReasonUnfenceable {
		t.Fatalf("class removed mid-fence: %s/%s, want Paused/%s", tk.Status.Phase, tk.Status.Reason, decide.ReasonUnfenceable)
	}
	for range 3 {
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
	}
	tk = f.mustTakeover(failedNode)
	if tk.PhaseTime(v1alpha1.PhaseFenced) != nil || f.released(failedNode) || len(f.fencer.Calls) != calls {
		t.Fatalf("class removed: fenced %v, released %v, fence calls %d -> %d; want none of them (timeline %s)",
			tk.PhaseTime(v1alpha1.PhaseFenced) != nil, f.released(failedNode), calls, len(f.fencer.Calls), timeline(tk))
	}

	f.setConfig(func(c *config.Config) { c.Fencing.Classes = f.cfg.Fencing.Classes })
	f.fencer.Result = fence.Result{Done: true, Output: "off"}
	f.stepUntil(failedNode, v1alpha1.PhaseFenced, 3)
}

// A class whose provider a reload changes (same name, wait -> none) while
// its incident is Fencing: the Takeover recorded provider wait, so the
// incident is held, and never taken as fenced by provider none.
func TestReloadProviderChangedWhileFencing(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.pendingFence()
	f.detect()
	f.stepUntil(failedNode, v1alpha1.PhaseFencing, 2)
	f.setConfig(func(c *config.Config) {
		c.Fencing.Classes[0].Provider, c.Fencing.Classes[0].Wait = config.ProviderNone, nil
	})
	f.fencer.Result = fence.Result{Done: true, Unsafe: true, Output: "none"}
	f.stepUntil(failedNode, v1alpha1.PhasePaused, 2)
	for range 3 {
		f.advance(10 * time.Second)
		f.mustStep(failedNode)
	}
	tk := f.mustTakeover(failedNode)
	if tk.Status.Reason != decide.ReasonUnfenceable || tk.PhaseTime(v1alpha1.PhaseFenced) != nil || f.released(failedNode) {
		t.Fatalf("provider changed mid-fence: %s/%s, timeline %s, released %v; want Paused/%s, never fenced or released",
			tk.Status.Phase, tk.Status.Reason, timeline(tk), f.released(failedNode), decide.ReasonUnfenceable)
	}
	if tk.Spec.FenceProvider != config.ProviderWait {
		t.Errorf("spec.fenceProvider %q, want the recorded %q", tk.Spec.FenceProvider, config.ProviderWait)
	}
}

// dryRun turned on by a reload holds an open incident before its fence;
// turned off, the incident goes on.
func TestReloadDryRunToggled(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.detect()
	f.setConfig(func(c *config.Config) { c.DryRun = true })
	tk := f.stepUntil(failedNode, v1alpha1.PhasePaused, 2)
	if tk.Status.Reason != decide.ReasonDryRun || len(f.fencer.Calls) != 0 {
		t.Fatalf("dryRun on: %s/%s with %d fence calls, want Paused/%s and none", tk.Status.Phase, tk.Status.Reason,
			len(f.fencer.Calls), decide.ReasonDryRun)
	}
	f.advance(10 * time.Second)
	f.mustStep(failedNode)
	if len(f.fencer.Calls) != 0 || f.released(failedNode) {
		t.Fatalf("dryRun on: %d fence calls, released %v", len(f.fencer.Calls), f.released(failedNode))
	}
	f.setConfig(func(c *config.Config) { c.DryRun = false })
	f.stepUntil(failedNode, v1alpha1.PhaseReleased, 4)
}

// A reload that shortens unhealthyAfter applies the new window to the
// silence this controller has itself watched: a node silent for 10 s is
// not taken as failed under a new 15 s window until 15 s have passed.
func TestReloadShorterWindow(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	f.setConfig(func(c *config.Config) { c.UnhealthyAfter = config.Duration{Duration: 40 * time.Second} })
	f.fail(failedNode)
	f.advance(10 * time.Second)
	f.mustStep(failedNode)
	f.setConfig(func(c *config.Config) { c.UnhealthyAfter = config.Duration{Duration: 15 * time.Second} })
	if got := f.c.health.blindAfter; got != 7500*time.Millisecond {
		t.Errorf("blind after %s, want half the new window", got)
	}
	f.mustStep(failedNode)
	if tk := f.takeover(failedNode); tk != nil {
		t.Fatalf("opened after 10 s of silence under a 15 s window: %s", timeline(tk))
	}
	f.advance(4 * time.Second)
	f.mustStep(failedNode)
	if tk := f.takeover(failedNode); tk != nil {
		t.Fatalf("opened after 14 s of silence under a 15 s window: %s", timeline(tk))
	}
	f.advance(time.Second)
	f.mustStep(failedNode)
	f.mustTakeover(failedNode)
}

// What the controller built at start cannot change live: SetConfig
// refuses it with the field, from and to, and keeps the configuration.
func TestSetConfigRefusesRestartFields(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		field string
		edit  func(*config.Config)
	}{
		{"apiGuard.failureThreshold", func(c *config.Config) { c.APIGuard.FailureThreshold++ }},
		{"fenceCheckInterval", func(c *config.Config) { c.FenceCheckInterval.Duration = 0 }},
		{"leaderElection.namespace", func(c *config.Config) { c.LeaderElection.Namespace = "other" }},
		{"fencing.classes[].provider", func(c *config.Config) {
			c.Fencing.Classes = append(c.Fencing.Classes, config.FenceClass{Name: "agents", Provider: config.ProviderAgent,
				NodeNames: []string{"w9"}, Timeout: config.Duration{Duration: time.Minute}})
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			before := f.c.Config()
			err := f.c.SetConfig(f.reloaded(tc.edit))
			var re *RestartError
			if !errors.As(err, &re) || re.Field != tc.field {
				t.Fatalf("SetConfig: %v, want a restart refusal naming %s", err, tc.field)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.field+": changed from ") ||
				!strings.HasSuffix(msg, "which needs a restart; the change was not applied") ||
				strings.Contains(msg, "\n") {
				t.Errorf("message %q", msg)
			}
			if f.c.Config() != before {
				t.Error("the configuration in force changed")
			}
		})
	}
}

// A step holds the snapshot it started with: a reload during it does not
// change what it reads.
func TestStepKeepsItsSnapshot(t *testing.T) {
	f := newFixture(t)
	s := f.c.conf()
	ctx := withSettings(f.ctx(), s)
	f.setConfig(func(c *config.Config) { c.DryRun = true })
	if f.c.confIn(ctx) != s || f.c.confIn(ctx).DryRun {
		t.Error("the step's snapshot changed with the reload")
	}
	if !f.c.confIn(f.ctx()).DryRun || !f.c.Config().DryRun {
		t.Error("a new step does not read the reloaded configuration")
	}
}
