//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// failover powers off mysql-0's node and waits for mysql-0 Ready elsewhere;
// it prints the downtime breakdown and returns the old node, the Takeover
// and the RTO.
func (e *env) failover(title string, timeout time.Duration) (string, v1alpha1.Takeover, time.Duration) {
	e.t.Helper()
	old := e.deployMySQL()
	o := newOracle(e, strings.ReplaceAll(title, " ", "_"), e.fenceAttempts)
	e.controllerWatching(old)
	o.fail(old)
	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		e.t.Fatal(err)
	}
	p := e.readyPod("default", "mysql-0", old, timeout)
	rto := time.Since(t0)
	defer func() { o.finish(fmt.Sprintf("mysql-0 Ready on %s; rto_seconds=%.1f", p.Spec.NodeName, rto.Seconds())) }()
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(e.t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	if va := e.attachment("pv-mysql-0", old); va != nil {
		e.t.Fatalf("the old VolumeAttachment %s on %s is still there", va.Name, old)
	}
	timeline(e.t, title, t0, tk)
	e.t.Logf("RTO (power-off to mysql-0 Ready on %s): %.1fs", p.Spec.NodeName, rto.Seconds())
	e.breakdown(title, old, t0, tk, rto)
	return old, tk, rto
}

// Scenario 2 (and 3 for each): every release strategy, fast profile.
func TestReleaseStrategies(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{"OutOfServiceTaint", "DeleteNode", "ForceDelete"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
			ctl := e.startController("liberator-a", fastConfig("releaseStrategy: "+strategy+"\n"))
			old, tk, rto := e.failover("scenario 2: "+strategy, 2*time.Minute)
			e.checkTakeoverMetrics(ctl)
			if strategy == "OutOfServiceTaint" {
				e.checkSecureMetrics(fastConfig("releaseStrategy: " + strategy + "\n"))
			}
			fmt.Printf("RESULT scenario=2 profile=fast strategy=%s rto_seconds=%.1f\n", strategy, rto.Seconds())
			if tk.Spec.Strategy != v1alpha1.Strategy(strategy) {
				t.Fatalf("Takeover strategy %s, want %s", tk.Spec.Strategy, strategy)
			}
			_, err := e.kube.CoreV1().Nodes().Get(context.Background(), old, metav1.GetOptions{})
			switch strategy {
			case "DeleteNode":
				if err == nil {
					t.Fatalf("node %s still exists after DeleteNode", old)
				}
			case "OutOfServiceTaint":
				if !release.HasTaint(e.node(old)) {
					t.Fatalf("node %s has no out-of-service taint", old)
				}
			case "ForceDelete":
				if n := e.node(old); release.HasTaint(n) || !release.HasLiberatorTaint(n) {
					t.Fatalf("ForceDelete: node %s taints %v, want liberator's NoSchedule taint and no out-of-service taint", old, n.Spec.Taints)
				}
			}
			// Scenario 3: the node comes back (with DeleteNode it
			// re-registers as a new object).
			if err := e.c.PowerOn(context.Background(), old); err != nil {
				t.Fatal(err)
			}
			closed := e.takeoverIn(old, v1alpha1.PhaseRecovered, 2*time.Minute)
			n := e.node(old)
			if release.HasLiberatorTaint(n) || n.Spec.Unschedulable {
				t.Fatalf("node %s after recovery: taints %v, unschedulable %v", old, n.Spec.Taints, n.Spec.Unschedulable)
			}
			if strategy == "DeleteNode" && string(n.UID) == closed.Spec.NodeUID {
				t.Fatalf("node %s has its old UID: it did not re-register", old)
			}
		})
	}
}

// Scenario 4: heartbeats stop and resume inside the window: nothing is
// released, and no incident stays open. Another worker losing power for
// good meanwhile is taken over: the controller was leading and acting.
func TestFlappingNodeNotReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 3, LeaseDurationSeconds: fastLease})
	// Two nodes are down at once at times (the flapping one and the
	// control); the storm guard must not hold the control.
	ctl := e.startController("liberator-a", fastConfig("maxUnhealthy: 2\n"))
	e.waitLeader(ctl, time.Minute)
	old := e.deployMySQL()
	before, _ := e.pod("default", "mysql-0")
	control := ""
	for _, n := range e.c.Nodes() {
		if n != old && n != bed.ControlPlaneNode && control == "" {
			control = n
		}
	}
	if err := e.c.PowerOff(control); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.c.PowerOff(old); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second) // well inside the 10 s window
		if err := e.c.PowerOn(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		t.Logf("flap %d: off 4 s, on again", i+1)
		time.Sleep(3 * time.Second)
	}
	time.Sleep(15 * time.Second) // more than a whole window after the last flap
	for _, tk := range e.takeovers(old) {
		if tk.PhaseTime(v1alpha1.PhaseReleased) != nil || tk.PhaseTime(v1alpha1.PhaseFencing) != nil {
			t.Fatalf("flapping node was acted on: %s %+v", tk.Name, tk.Status.Timeline)
		}
	}
	p, err := e.pod("default", "mysql-0")
	if err != nil || p.UID != before.UID || p.Spec.NodeName != old {
		t.Fatalf("mysql-0 moved or was deleted: %v", err)
	}
	if release.HasTaint(e.node(old)) {
		t.Fatal("flapping node was tainted")
	}
	tk := e.takeoverIn(control, v1alpha1.PhaseReleased, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
}

// Scenario 5: more than maxUnhealthy nodes lose power at once: nothing is
// released and the guard is reported; when enough come back, the rest are
// handled.
func TestStormGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 4, LeaseDurationSeconds: fastLease})
	// A safe time of 1 s: a victim let through before the guard counts the
	// other would be fenced and released at once, and this test would see
	// it. The guard counts a node silent for half the window with the
	// unhealthy ones, so neither victim may start fencing.
	cfg := strings.Replace(fastConfig("maxUnhealthy: 1\n"), "safeTime: 5s", "safeTime: 1s", 1)
	ctl := e.startController("liberator-a", cfg)
	e.waitLeader(ctl, time.Minute)
	e.ensureStorage()
	e.apply("examples/mysql-statefulset")
	p := e.readyPod("default", "mysql-0", "", 2*time.Minute)
	victims := []string{p.Spec.NodeName}
	for _, n := range e.c.Nodes() {
		if n != p.Spec.NodeName && n != bed.ControlPlaneNode && len(victims) < 2 {
			victims = append(victims, n)
		}
	}
	for _, n := range victims {
		if err := e.c.PowerOff(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("powered off %v at once (maxUnhealthy 1)", victims)
	for _, n := range victims {
		tk := e.takeoverIn(n, v1alpha1.PhasePaused, time.Minute)
		if tk.Status.Reason != "StormGuard" {
			t.Fatalf("%s paused for %s, want StormGuard", n, tk.Status.Reason)
		}
		cond := false
		for _, c := range tk.Status.Conditions {
			cond = cond || (c.Type == "StormGuard" && c.Status == metav1.ConditionTrue)
		}
		if !cond {
			t.Fatalf("Takeover %s has no StormGuard=True condition", tk.Name)
		}
	}
	e.expectEvent(victims[0], "StormGuard")
	time.Sleep(10 * time.Second)
	for _, n := range victims {
		for _, tk := range e.takeovers(n) {
			// The second victim was counted (silent for half the window)
			// before the first one's window closed: neither started fencing.
			if tk.PhaseTime(v1alpha1.PhaseFencing) != nil || tk.PhaseTime(v1alpha1.PhaseFenced) != nil || tk.PhaseTime(v1alpha1.PhaseReleased) != nil {
				t.Fatalf("storm guard on, yet %s was acted on: %+v", n, tk.Status.Timeline)
			}
		}
		if release.HasTaint(e.node(n)) {
			t.Fatalf("storm guard on, yet %s was tainted", n)
		}
	}
	if !strings.Contains(e.metrics(ctl), "liberator_storm_guard_active 1") {
		t.Fatal("metric liberator_storm_guard_active is not 1")
	}
	// The second victim comes back: one unhealthy node is allowed, so
	// mysql-0's node is taken over.
	if err := e.c.PowerOn(context.Background(), victims[1]); err != nil {
		t.Fatal(err)
	}
	e.readyPod("default", "mysql-0", victims[0], 2*time.Minute)
	tk := e.takeoverIn(victims[0], v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
	if p, f := tk.PhaseTime(v1alpha1.PhasePaused), tk.PhaseTime(v1alpha1.PhaseFenced); p == nil || !p.Before(f) {
		t.Fatalf("Takeover %s was not held by the storm guard before it was fenced: %+v", tk.Name, tk.Status.Timeline)
	}
	timeline(t, "scenario 5: storm guard lifted", tk.CreationTimestamp.Time, tk)
	closed := e.takeoverIn(victims[1], v1alpha1.PhaseRecovered, time.Minute)
	if closed.Status.Reason != "HeartbeatResumed" {
		t.Fatalf("returned node's incident closed with %s, want HeartbeatResumed", closed.Status.Reason)
	}
}

// Scenario 7: the leader dies in the middle of a takeover; the other
// replica resumes it without a second fence or a double release.
func TestLeaderChangeMidTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	// A long safe time keeps the incident in Fencing long enough to kill
	// the leader there.
	cfg := strings.Replace(fastConfig(""), "safeTime: 5s", "safeTime: 15s", 1)
	a := e.startController("liberator-a", cfg)
	e.waitFor("liberator-a to lead", time.Minute, func() (bool, error) {
		return strings.Contains(a.logText(), "became leader"), nil
	})
	b := e.startController("liberator-b", cfg)
	e.waitFor("liberator-b to stand by", time.Minute, func() (bool, error) {
		return strings.Contains(b.logText(), "standing by"), nil
	})
	old := e.deployMySQL()
	before, _ := e.pod("default", "mysql-0")
	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		t.Fatal(err)
	}
	e.takeoverIn(old, v1alpha1.PhaseFencing, time.Minute)
	a.kill()
	t.Logf("killed the leader liberator-a during Fencing, %.1fs after power-off", time.Since(t0).Seconds())
	p := e.readyPod("default", "mysql-0", old, 2*time.Minute)
	if p.UID == before.UID {
		t.Fatal("mysql-0 was not recreated")
	}
	if !strings.Contains(b.logText(), "became leader") {
		t.Fatal("liberator-b did not take over")
	}
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	timeline(t, "scenario 7: leader change mid-takeover", t0, tk)
	counts := map[v1alpha1.Phase]int{}
	for _, tr := range tk.Status.Timeline {
		counts[tr.Phase]++
	}
	if tk.Status.FenceAttempts != 1 || counts[v1alpha1.PhaseFencing] != 1 || counts[v1alpha1.PhaseFenced] != 1 || counts[v1alpha1.PhaseReleased] != 1 {
		t.Fatalf("fence attempts %d, timeline %v: want one fence and one release", tk.Status.FenceAttempts, counts)
	}
	if n := len(e.takeovers(old)); n != 1 {
		t.Fatalf("%d Takeovers for %s, want 1", n, old)
	}
	// The replacement is left alone: no second release deletes it.
	time.Sleep(5 * time.Second)
	if q, err := e.pod("default", "mysql-0"); err != nil || q.UID != p.UID {
		t.Fatalf("the replacement mysql-0 was deleted again: %v", err)
	}
}

// Scenario 8: the control-plane node loses power: not touched by default.
// A worker losing power at the same time is taken over: the controller was
// leading and acting all along. (A second worker stays up: with every node
// silent at once the controller's view is blind and it remediates nothing.)
func TestControlPlaneNodeUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	ctl := e.startController("liberator-a", fastConfig(""))
	e.waitLeader(ctl, time.Minute)
	for _, n := range []string{bed.ControlPlaneNode, "worker-1"} {
		if err := e.c.PowerOff(n); err != nil {
			t.Fatal(err)
		}
	}
	// The positive control: the worker is fenced and released.
	tk := e.takeoverIn("worker-1", v1alpha1.PhaseReleased, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
	time.Sleep(25 * time.Second) // two and a half windows more
	if l := e.takeovers(bed.ControlPlaneNode); len(l) != 0 {
		t.Fatalf("control-plane node got a Takeover: %+v", l[0].Status)
	}
	if release.HasTaint(e.node(bed.ControlPlaneNode)) {
		t.Fatal("control-plane node was tainted")
	}
}

// metrics scrapes the controller's /metrics.
func (e *env) metrics(p *controllerProc) string {
	e.t.Helper()
	body, err := httpGet("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		e.t.Fatalf("scrape metrics: %v", err)
	}
	return body
}
