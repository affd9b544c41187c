package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// watch starts watching the stateful pods, noting the pods that exist now
// (none of them is a replacement), and the probe.
func (d *drillRun) watch(ctx context.Context) (<-chan podChange, error) {
	var events <-chan podChange
	if len(d.tr.pods) > 0 {
		w, err := watchPods(ctx, d.c.kube, namespacesOf(d.tr.pods), d.clock)
		if err != nil {
			return nil, err
		}
		for _, p := range w.pods() {
			d.tr.noteExisting(p)
		}
		events = w.events
	}
	if d.o.probe != "" {
		d.pr = &prober{cfg: probeConfig{address: d.o.probe, interval: d.o.probeInterval}, clock: d.clock}
		go d.pr.run(ctx)
	}
	return events, nil
}

// fire stops the node; times count from when the trigger returned.
func (d *drillRun) fire(ctx context.Context) error {
	fmt.Fprintf(d.s.Out, "Drill on node %s: %s (%s)\n", d.node, plural(len(d.tr.pods), "stateful pod"), d.podNames())
	d.ob = drillObservation{node: d.node, method: d.trig.method, trigger: d.trig.description, seen: map[int]time.Time{}, pods: d.tr.pods}
	if d.pr != nil {
		d.ob.probeCfg = &d.pr.cfg
	}
	d.ob.triggerStart = d.clock.Now()
	if err := d.trig.fire(ctx); err != nil {
		return err
	}
	d.ob.triggered = d.clock.Now()
	d.logf(d.ob.triggered, "node %s stopped (%s)", d.node, d.trig.method)
	return nil
}

func (d *drillRun) logf(at time.Time, format string, args ...any) {
	fmt.Fprintf(d.s.Out, "  %7s  %s\n", offset(at.Sub(d.ob.triggered)), fmt.Sprintf(format, args...))
}

// observe follows the pods, the Takeover and the probe until the drill is
// done or --timeout.
func (d *drillRun) observe(ctx context.Context, events <-chan podChange) {
	loop := &watchLoop{
		clock: d.clock, tracker: d.tr, events: events,
		progress:  func(p progress, at time.Time) { d.logf(at, "%s", p.describe()) },
		poll:      func(now time.Time) { d.poll(ctx, now) },
		pollEvery: drillPollInterval,
		done:      func() bool { return d.finished },
	}
	switch loop.run(ctx, d.o.timeout) {
	case loopTimedOut:
		d.ob.problem = fmt.Sprintf("timed out after %s", d.o.timeout)
	case loopInterrupted:
		d.ob.problem = "interrupted"
	}
	d.ob.finished = d.clock.Now()
}

// poll reads the node's new Takeover and the probe, with a line for each
// change, and decides whether the drill is done.
func (d *drillRun) poll(ctx context.Context, now time.Time) {
	ob := &d.ob
	tk, err := drillTakeover(ctx, d.c, d.node, d.known)
	if err != nil {
		if err.Error() != d.lastWarning {
			d.lastWarning = err.Error()
			fmt.Fprintf(d.s.ErrOut, "warning: %v\n", err)
		}
	} else if tk != nil {
		if ob.takeover == nil {
			d.logf(now, "Takeover %s opened", tk.Name)
		}
		ob.takeover = tk
		for i, p := range tk.Status.Timeline {
			if _, ok := ob.seen[i]; !ok {
				ob.seen[i] = now
				d.logf(now, "%s (%s) at %s", p.Phase, orDash(p.Reason), p.Time.UTC().Format(time.RFC3339))
			}
		}
	}
	if d.pr != nil {
		failed, answering := probeState(d.pr.snapshot(), ob.triggerStart)
		if failed && !answering && !d.probeDown {
			d.probeDown = true
			d.logf(now, "probe %s: not answering", d.o.probe)
		}
		if d.probeDown && answering {
			d.probeDown = false
			d.logf(now, "probe %s: answering again", d.o.probe)
		}
	}
	d.finished = drillDone(*ob, d.tr, d.pr)
}

// drillDone reports whether everything the drill waits for happened.
func drillDone(ob drillObservation, tr *tracker, pr *prober) bool {
	if ob.takeover == nil || ob.takeover.PhaseTime(v1alpha1.PhaseWorkloadsReady) == nil || len(tr.waiting()) > 0 {
		return false
	}
	if pr != nil {
		failed, answering := probeState(pr.snapshot(), ob.triggerStart)
		if failed && !answering {
			return false
		}
	}
	return true
}

// drillTakeover returns the node's Takeover opened during the drill (one not
// in known), or nil.
func drillTakeover(ctx context.Context, c *clients, node string, known map[string]bool) (*v1alpha1.Takeover, error) {
	l, err := listTakeovers(ctx, c.tk, node)
	if err != nil {
		return nil, apiError("list Takeovers", err)
	}
	for i := len(l) - 1; i >= 0; i-- {
		if !known[l[i].Name] {
			return &l[i], nil
		}
	}
	return nil, nil
}
