//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// The agent scenarios: nodes fenced by their own liberator agent and the
// bed's watchdog, cut off for real (network namespaces). Each runs on its
// own bed with the fast profile and ends with the fault suite's oracle:
// no node the scenario did not fail was reset, and no replacement ran
// while the old copy still ran (the bed's own reset times).
func TestAgentScenarios(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cut  bed.Partition
	}{{"CutOffFromAll", bed.PartitionAll}, {"CutOffFromAPI", bed.PartitionAPI}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			agentCutOff(t, "Agent"+c.name, agentFast, c.cut, true)
		})
	}
	t.Run("APIServerDown60s", func(t *testing.T) {
		t.Parallel()
		agentAPIServerDown(t)
	})
	t.Run("KubeletDead", func(t *testing.T) {
		t.Parallel()
		agentKubeletDead(t)
	})
	t.Run("AgentKilled", func(t *testing.T) {
		t.Parallel()
		agentKilled(t)
	})
	t.Run("LeaderChangeMidFence", func(t *testing.T) {
		t.Parallel()
		agentLeaderChange(t)
	})
}

// TestAgentRTODefaults measures the RTO of agent fencing with every
// default (agents, kubelet Lease, controller): mysql-0's node cut off from
// everything, to mysql-0 Ready elsewhere. The fast profile's figure is
// printed by TestAgentScenarios/CutOffFromAll. Figures, not assertions.
func TestAgentRTODefaults(t *testing.T) {
	t.Parallel()
	agentCutOff(t, "AgentRTODefaults", agentDefaults, bed.PartitionAll, false)
}

// agentCutOff cuts mysql-0's node off (from everything, or from the API
// only while its peers still reach it): its agent stops feeding, the
// watchdog resets the node, and mysql-0 moves, after the reset. With
// recover, the node is then healed and booted: its new agent arms again
// and the incident closes.
func agentCutOff(t *testing.T, scenario string, p agentProfile, cut bed.Partition, recover bool) {
	l := newAgentLab(t, scenario, p)
	l.lead("liberator-a", l.config(""))
	old := l.deployMySQL()
	before, _ := l.podUID("default", "mysql-0")
	l.o.fail(old)
	t0 := time.Now()
	if err := l.c.Partition(old, cut); err != nil {
		t.Fatal(err)
	}
	r, figures := l.selfFenceFigures(old, t0)
	t.Logf("%s: %s; agent says:\n%s", old, figures, l.agentReasons(old))
	pod := l.readyPod("default", "mysql-0", old, 3*time.Minute)
	rto := time.Since(t0)
	if string(pod.UID) == before {
		t.Fatal("mysql-0 was not recreated")
	}
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	if rel := tk.PhaseTime(v1alpha1.PhaseReleased); rel == nil || rel.Time.Before(r.Time.Add(-time.Second)) {
		// Takeover times are the API server's, on this machine's clock,
		// rounded to the second.
		t.Errorf("released at %v, before the reset at %s", rel, r.Time.Format(time.RFC3339Nano))
	}
	after := l.replacementAfterReset(string(pod.UID), r)
	timeline(t, scenario, t0, tk)
	l.allAgentsArmedBut(old)
	what := map[bed.Partition]string{bed.PartitionAll: "everything", bed.PartitionAPI: "api"}[cut]
	fmt.Printf("RESULT agent_rto profile=%s cut_from=%s rto_seconds=%.1f %s\n", p.name, what, rto.Seconds(), figures)
	outcome := fmt.Sprintf("%s %s: reset at T+%.1fs, mysql-0 Ready on %s at T+%.1fs (%.1fs after the reset); %s; %s",
		old, cut, r.Time.Sub(t0).Seconds(), pod.Spec.NodeName, rto.Seconds(), after.Seconds(), figures, l.phases(old))
	if recover {
		outcome += "; " + l.recoverNode(old)
	}
	l.o.finish(outcome)
}

// recoverNode heals and boots a reset node: its new agent arms with the
// new boot ID and the incident closes.
func (l *agentLab) recoverNode(node string) string {
	l.t.Helper()
	t1 := time.Now()
	if err := l.c.Heal(node); err != nil {
		l.t.Fatal(err)
	}
	if err := l.c.PowerOn(context.Background(), node); err != nil {
		l.t.Fatal(err)
	}
	p := l.waitArmed(node, time.Minute)
	tk := l.takeoverIn(node, v1alpha1.PhaseRecovered, time.Minute)
	if tk.Status.Reason != "NodeRecovered" {
		l.t.Errorf("Takeover of %s closed with %s, want NodeRecovered", node, tk.Status.Reason)
	}
	return fmt.Sprintf("healed and booted: agent armed (boot %s), Takeover %s after %.1fs", p.BootID[:8], tk.Status.Reason, time.Since(t1).Seconds())
}

// allAgentsArmedBut fails when an agent other than those named is not
// armed and running.
func (l *agentLab) allAgentsArmedBut(not ...string) {
	l.t.Helper()
	for _, n := range l.otherWorkers(not...) {
		p, err := l.agentLease(n)
		if err != nil || !p.Armed || !l.c.AgentRunning(n) {
			l.t.Errorf("the agent of %s: armed %v, running %v, %v", n, p.Armed, l.c.AgentRunning(n), err)
		}
	}
}

// agentAPIServerDown stops the API server for 60 s while every node stays
// healthy: every agent loses the API, asks its peers, hears from a quorum
// that they lose it too, and keeps feeding: no node is reset and nothing is
// taken over. Then mysql-0's node is cut off, to show the agents and the
// controller still act.
func agentAPIServerDown(t *testing.T) {
	const scenario = "AgentAPIServerDown60s"
	l := newAgentLab(t, scenario, agentFast)
	cfg := l.config("")
	l.lead("liberator-a", cfg)
	old := l.deployMySQL()
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := l.c.WatchComponents(wctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := l.c.StopComponent(bed.KubeAPIServer); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for time.Since(begin) < 60*time.Second {
		time.Sleep(time.Second)
		for _, n := range l.otherWorkers() {
			if len(l.c.Resets(n)) > 0 || !l.c.AgentRunning(n) {
				t.Errorf("%s during the outage at +%.0fs: resets %d, agent running %v", n, time.Since(begin).Seconds(), len(l.c.Resets(n)), l.c.AgentRunning(n))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// Every agent asked its peers and stayed up, more than once.
	var rounds []string
	for _, n := range l.otherWorkers() {
		v, err := l.agentMetric(n, "liberator_agent_peer_rounds_total", `result="stay_up"`)
		if err != nil || v < 2 {
			t.Errorf("the agent of %s: %v rounds of questions that kept it up during the outage (%v); want several", n, v, err)
		}
		rounds = append(rounds, fmt.Sprintf("%s=%.0f", n, v))
	}
	back, revived, stuck, restarted := l.restoreControlPlane(cfg, func(ctx context.Context, c *bed.Cluster) error {
		return c.StartComponent(ctx, bed.KubeAPIServer)
	})
	outage := back.Sub(begin)
	t.Logf("API server back after %.0fs; components restarted: %v; kwok restarted: %v; controllers restarted: %v", outage.Seconds(), revived, stuck, restarted)
	// A whole window and a half with every node renewing again.
	time.Sleep(15 * time.Second)
	l.untouched()
	if t.Failed() {
		t.FailNow()
	}
	leader := l.leader(time.Minute)
	// The control: mysql-0's node cut off from everything self-fences and
	// mysql-0 moves.
	l.o.fail(old)
	t0 := time.Now()
	if err := l.c.Partition(old, bed.PartitionAll); err != nil {
		t.Fatal(err)
	}
	_, figures := l.selfFenceFigures(old, t0)
	p := l.readyPod("default", "mysql-0", old, 2*time.Minute)
	l.logTimelines(old)
	l.o.finish(fmt.Sprintf("API server down %.0fs: no reset, no Takeover, no fence request; stay-up rounds %s; componentsRestarted=%v kwokRestarted=%v controllersRestarted=%v leaderAfter=%s; control: %s cut off, %s, mysql-0 Ready on %s after %.1fs; %s",
		outage.Seconds(), strings.Join(rounds, ","), revived, stuck, restarted, leader.Name, old, figures, p.Spec.NodeName, time.Since(t0).Seconds(), l.phases(old)))
}

// untouched fails when a worker got a Takeover, was reset, or was asked to
// fence, or when an agent is not armed and running.
func (l *agentLab) untouched() {
	l.t.Helper()
	for _, n := range l.otherWorkers() {
		if tks := l.takeovers(n); len(tks) > 0 {
			l.t.Errorf("healthy node %s got a Takeover: %s", n, l.phases(n))
		}
		l.noTakeoverActed(n)
		if r := l.c.Resets(n); len(r) > 0 {
			l.t.Errorf("%s was reset by its watchdog at %s", n, r[0].Time.Format(time.RFC3339Nano))
		}
		if req := l.leases.request(n); req.takeover != "" {
			l.t.Errorf("a fence of %s was requested: %s", n, req.takeover)
		}
	}
	l.allAgentsArmedBut()
}

// agentKubeletDead kills the kwok (kubelet) of mysql-0's node while its
// agent lives: the controller asks the agent to fence, the agent stops
// feeding and acknowledges on its Lease, the watchdog resets the node, and
// mysql-0 moves after the reset.
func agentKubeletDead(t *testing.T) {
	l := newAgentLab(t, "AgentKubeletDead", agentFast)
	l.lead("liberator-a", l.config(""))
	old := l.deployMySQL()
	l.o.fail(old)
	t0 := time.Now()
	if err := l.c.KillKubelet(old); err != nil {
		t.Fatal(err)
	}
	r, _ := l.selfFenceFigures(old, t0)
	pod := l.readyPod("default", "mysql-0", old, 2*time.Minute)
	rto := time.Since(t0)
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
	req, ack := l.leases.request(old), l.leases.ack(old)
	if req.takeover != tk.Name || ack.takeover != tk.Name {
		t.Errorf("fence request %q and acknowledgement %q on the agent Lease of %s; want both %s", req.takeover, ack.takeover, old, tk.Name)
	}
	if !ack.at.IsZero() && r.Time.Before(ack.at.Add(-r.Timeout)) {
		t.Errorf("the node was reset at %s, more than a watchdog timeout before the acknowledgement was seen at %s", r.Time.Format(time.RFC3339Nano), ack.at.Format(time.RFC3339Nano))
	}
	if r.LastFeed.Before(req.at.Add(-1500 * time.Millisecond)) {
		t.Errorf("the watchdog was last fed at %s, before the fence was requested at %s: it was not the request that stopped it", r.LastFeed.Format(time.RFC3339Nano), req.at.Format(time.RFC3339Nano))
	}
	timeline(t, "AgentKubeletDead", t0, tk)
	l.allAgentsArmedBut(old)
	l.o.finish(fmt.Sprintf("kubelet of %s killed: fence requested at T+%.1fs, acknowledged at T+%.1fs, last feed T+%.1fs, reset T+%.1fs; mysql-0 Ready on %s at T+%.1fs (%.1fs after the reset); %s",
		old, req.at.Sub(t0).Seconds(), ack.at.Sub(t0).Seconds(), r.LastFeed.Sub(t0).Seconds(), r.Time.Sub(t0).Seconds(),
		pod.Spec.NodeName, rto.Seconds(), l.replacementAfterReset(string(pod.UID), r).Seconds(), l.phases(old)))
}

// agentKilled kills the agent of mysql-0's node: nobody feeds its watchdog,
// which resets the node (the documented behaviour, as for SBD); the
// controller sees the node and its agent silent and releases mysql-0 once
// the agent's bound has passed.
func agentKilled(t *testing.T) {
	l := newAgentLab(t, "AgentKilled", agentFast)
	l.lead("liberator-a", l.config(""))
	old := l.deployMySQL()
	l.o.fail(old)
	t0 := time.Now()
	if err := l.c.KillAgent(old); err != nil {
		t.Fatal(err)
	}
	r, _ := l.selfFenceFigures(old, t0)
	if d := r.Time.Sub(t0); d > l.profile.watchdog+2*time.Second {
		t.Errorf("reset %.1fs after the agent was killed, want within the watchdog timeout %s", d.Seconds(), l.profile.watchdog)
	}
	pod := l.readyPod("default", "mysql-0", old, 2*time.Minute)
	rto := time.Since(t0)
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
	timeline(t, "AgentKilled", t0, tk)
	l.allAgentsArmedBut(old)
	l.o.finish(fmt.Sprintf("agent of %s killed: watchdog last fed at T%+.1fs, reset at T+%.1fs; mysql-0 Ready on %s at T+%.1fs (%.1fs after the reset); %s",
		old, r.LastFeed.Sub(t0).Seconds(), r.Time.Sub(t0).Seconds(), pod.Spec.NodeName, rto.Seconds(),
		l.replacementAfterReset(string(pod.UID), r).Seconds(), l.phases(old)))
}

// agentLeaderChange kills the leading controller once it has asked the
// agent of mysql-0's node (kubelet dead) to fence and before it released
// anything; the standby takes over and completes the takeover safely: one
// Takeover, one release, after the node's reset.
func agentLeaderChange(t *testing.T) {
	l := newAgentLab(t, "AgentLeaderChangeMidFence", agentFast)
	cfg := l.config("")
	a := l.lead("liberator-a", cfg)
	b := l.startController("liberator-b", cfg)
	l.waitFor("liberator-b to stand by", time.Minute, func() (bool, error) {
		return strings.Contains(b.logText(), "standing by"), nil
	})
	l.mu.Lock()
	l.ctls = append(l.ctls, b)
	l.mu.Unlock()
	old := l.deployMySQL()
	before, _ := l.podUID("default", "mysql-0")
	l.o.fail(old)
	t0 := time.Now()
	if err := l.c.KillKubelet(old); err != nil {
		t.Fatal(err)
	}
	l.waitFor("the fence request on the agent Lease of "+old, time.Minute, func() (bool, error) {
		return l.leases.request(old).takeover != "", nil
	})
	a.kill()
	killed := time.Since(t0)
	tks := l.takeovers(old)
	if len(tks) != 1 {
		t.Fatalf("%d Takeovers of %s when the leader was killed", len(tks), old)
	}
	if at := tks[0].PhaseTime(v1alpha1.PhaseFenced); at != nil || tks[0].PhaseTime(v1alpha1.PhaseReleased) != nil {
		t.Fatalf("the leader was killed too late: the Takeover was already %s (%s)", tks[0].Status.Phase, l.phases(old))
	}
	inPhase := tks[0].Status.Phase
	t.Logf("killed the leader liberator-a at T+%.1fs with the fence requested, Takeover in %s", killed.Seconds(), inPhase)
	l.waitLeader(b, time.Minute)
	led := time.Since(t0)
	r, _ := l.selfFenceFigures(old, t0)
	pod := l.readyPod("default", "mysql-0", old, 2*time.Minute)
	ready := time.Since(t0)
	if string(pod.UID) == before {
		t.Fatal("mysql-0 was not recreated")
	}
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	time.Sleep(5 * time.Second)
	if uid, _ := l.podUID("default", "mysql-0"); uid != string(pod.UID) {
		t.Errorf("the replacement mysql-0 was deleted again")
	}
	counts := map[v1alpha1.Phase]int{}
	for _, tr := range tk.Status.Timeline {
		counts[tr.Phase]++
	}
	if n := len(l.takeovers(old)); n != 1 || counts[v1alpha1.PhaseReleased] != 1 || counts[v1alpha1.PhaseFenced] != 1 {
		t.Errorf("%d Takeovers, timeline %v: want one Takeover, one Fenced, one Released", n, counts)
	}
	if n := len(l.c.Resets(old)); n != 1 {
		t.Errorf("%s was reset %d times, want once", old, n)
	}
	timeline(t, "AgentLeaderChangeMidFence", t0, tk)
	l.allAgentsArmedBut(old)
	l.o.finish(fmt.Sprintf("leader killed at T+%.1fs in %s with the fence of %s requested; liberator-b led at T+%.1fs; reset at T+%.1fs; mysql-0 Ready on %s at T+%.1fs (%.1fs after the reset); fenceAttempts=%d; %s",
		killed.Seconds(), inPhase, old, led.Seconds(), r.Time.Sub(t0).Seconds(), pod.Spec.NodeName, ready.Seconds(),
		l.replacementAfterReset(string(pod.UID), r).Seconds(), tk.Status.FenceAttempts, l.phases(old)))
}
