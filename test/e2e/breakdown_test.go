//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/release"
)

// downtimeOf is the Takeover's recorded downtime breakdown, or the parts
// computed so far when none is recorded yet.
func downtimeOf(tk v1alpha1.Takeover) *v1alpha1.Downtime {
	if tk.Status.Downtime != nil {
		return tk.Status.Downtime
	}
	return v1alpha1.ComputeDowntime(&tk)
}

// writeBreakdown writes the Takeover's downtime breakdown under its
// timeline: the last heartbeat the controller saw, relative to t0, and the
// parts.
func writeBreakdown(w io.Writer, t0 time.Time, tk v1alpha1.Takeover) {
	d := downtimeOf(tk)
	if d == nil {
		return
	}
	label := "downtime"
	if tk.Status.Downtime == nil {
		label = "downtime so far"
	}
	if hb := tk.Status.LastHeartbeatSeen; hb != nil {
		fmt.Fprintf(w, "  last heartbeat seen at T%+.1fs\n", hb.Sub(t0).Seconds())
	}
	fmt.Fprintf(w, "  %s: %s\n", label, d.Summary())
}

// failedAt is when the bed took node down (powered off or cut off) at or
// after t0, by its own record; zero when it did not.
func (e *env) failedAt(node string, t0 time.Time) time.Time {
	for _, tr := range e.c.History(node) {
		if tr.State != "on" && !tr.Time.Before(t0) {
			return tr.Time
		}
	}
	return time.Time{}
}

// breakdown checks that the Takeover of a failover recorded its downtime
// breakdown, and prints it as a RESULT line: heartbeat_age is the node's
// failure (the bed's record, at or after t0) minus the last heartbeat the
// controller saw, detection_lag the detection part minus the unhealthy
// window of the controller started last, rto the scenario's own failure to
// Ready. A detection shorter than the window would mean a node taken over
// before its whole window passed.
func (e *env) breakdown(scenario, node string, t0 time.Time, tk v1alpha1.Takeover, rto time.Duration) {
	e.t.Helper()
	window := e.windowOf(e.ctlConfig)
	d := tk.Status.Downtime
	if d == nil {
		e.t.Fatalf("Takeover %s in phase %s has no downtime breakdown", tk.Name, tk.Status.Phase)
	}
	var missing []string
	for _, p := range d.Parts() {
		if p.Duration == nil {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 || tk.Status.LastHeartbeatSeen == nil {
		e.t.Fatalf("Takeover %s breakdown %s (lastHeartbeatSeen %v): parts missing: %v", tk.Name, d.Summary(), tk.Status.LastHeartbeatSeen, missing)
	}
	detection, _ := d.Get("detection")
	if detection < window {
		e.t.Fatalf("Takeover %s detected %s after the last heartbeat seen, within the %s window", tk.Name, detection, window)
	}
	age := "-"
	if off := e.failedAt(node, t0); !off.IsZero() {
		age = seconds(off.Sub(tk.Status.LastHeartbeatSeen.Time))
	}
	f := func(name string) string {
		v, _ := d.Get(name)
		return seconds(v)
	}
	line := fmt.Sprintf("RESULT breakdown scenario=%s heartbeat_age=%s detection=%s detection_lag=%s fence=%s release=%s schedule=%s start=%s total=%s rto=%s",
		scenarioName(scenario), age, f("detection"), seconds(detection-window), f("fence"), f("release"), f("schedule"), f("start"), f("total"), seconds(rto))
	e.t.Log(line)
	fmt.Println(line)
	e.heartbeatDelivery(scenario, node, t0, tk)
}

// heartbeatDelivery prints when the dead node's last Lease renewal was
// written (its renewTime, on the bed's machine: the same clock) against the
// failure, and how much later the controller saw it: a renewal seen after
// the failure is one sent before it and delivered late.
func (e *env) heartbeatDelivery(scenario, node string, t0 time.Time, tk v1alpha1.Takeover) {
	l, err := e.kube.CoordinationV1().Leases(release.NodeLeaseNamespace).Get(context.Background(), node, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil || tk.Status.LastHeartbeatSeen == nil {
		e.t.Logf("no Lease renewTime of %s to compare (%v)", node, err)
		return
	}
	renew := l.Spec.RenewTime.Time
	before := "-"
	if off := e.failedAt(node, t0); !off.IsZero() {
		before = seconds(off.Sub(renew))
	}
	line := fmt.Sprintf("RESULT breakdown_heartbeat scenario=%s renew_before_failure=%s renew_seen_after=%s",
		scenarioName(scenario), before, seconds(tk.Status.LastHeartbeatSeen.Sub(renew)))
	e.t.Log(line)
	fmt.Println(line)
}

func scenarioName(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, ":", "")), "_")
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }

// controllerWatching waits until the controller is ready and has seen
// node's Lease renew since, then a random part of the renew interval, so
// that the failure the scenario causes next falls at a random moment of the
// renewal cycle (kit.Env.WaitWatching).
func (e *env) controllerWatching(node string) {
	e.t.Helper()
	phase, err := e.WaitWatching(context.Background(), e.ctl.Controller, node)
	if err != nil {
		e.t.Fatalf("controller %s watching %s: %v", e.ctl.Name, node, err)
	}
	e.t.Logf("failing %s %.2fs after its Lease renewal was seen", node, phase.Seconds())
}

// windowOf is the unhealthy window of a controller configuration.
func (e *env) windowOf(cfg string) time.Duration {
	e.t.Helper()
	c := config.Default()
	if err := config.Parse([]byte(cfg), c); err != nil {
		e.t.Fatalf("controller configuration: %v", err)
	}
	return c.UnhealthyAfter.Duration
}
