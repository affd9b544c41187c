//go:build e2e

package scale

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// fastClient is an admin client that reads protobuf and is not throttled
// below 500 requests per second.
func fastClient(t *testing.T, e *kit.Env) kubernetes.Interface {
	cfg := e.C.RESTConfig()
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// steadyState lets the controller settle, then measures it over the steady
// window with the seed daemon running beside it on the same cluster.
func (b *bench) steadyState(ctx context.Context) {
	t := b.t
	time.Sleep(2 * time.Second) // leader election, first scans
	// The controller's first fence-path check publishes every node's
	// FenceReady condition once (later rounds write only changes): the
	// steady window starts after it.
	firstRound := time.Now()
	if err := kit.Retry(10*time.Minute, func() error { return b.fenceReadyEverywhere(ctx) }); err != nil {
		t.Fatalf("the first fence-path check round: %v", err)
	}
	t.Logf("every node carries FenceReady %s after the controller synced", time.Since(firstRound).Round(100*time.Millisecond))
	seed, err := startSeed(ctx, b.e, b.dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := sampleProc(b.ctrl.Pid())
	if err != nil {
		t.Fatal(err)
	}
	var rssSum, rssMax int64
	n := int64(0)
	for time.Since(first.at) < b.sz.steady {
		time.Sleep(time.Second)
		s, err := sampleProc(b.ctrl.Pid())
		if err != nil {
			t.Fatal(err)
		}
		rssSum += s.rssKB
		rssMax = max(rssMax, s.rssKB)
		n++
	}
	last, err := sampleProc(b.ctrl.Pid())
	if err != nil {
		t.Fatal(err)
	}
	b.res.leaseAge, b.res.leaseCount = b.maxLeaseAge(ctx)
	// What each of the seed's polls reads: every Node, as JSON.
	if raw, err := b.e.Kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes").DoRaw(ctx); err == nil {
		b.res.nodeListBytes = len(raw)
	}
	seed.stop()
	if strings.Contains(seed.logText(), "Traceback") {
		t.Fatalf("the seed daemon failed:\n%s", tail(seed.logText(), 20))
	}
	b.res.steadyRSS, b.res.steadyRSSMax = rssSum/max(n, 1), rssMax
	b.res.steadyCPU = cpuShare(first, last)
	b.res.steady = last.at.Sub(first.at)
	time.Sleep(2 * time.Second) // the audit backend writes as requests end
	counts, err := countRequests(b.e.C.AuditLog(), first.at, last.at)
	if err != nil {
		t.Fatal(err)
	}
	b.res.ctrlReqs, b.res.seedReqs = counts[userOf(controllerSA)], counts[userOf(seedSA)]
	sync, err := countRequests(b.e.C.AuditLog(), b.res.syncStart, b.res.syncEnd)
	if err != nil {
		t.Fatal(err)
	}
	b.res.syncReqs = sync[userOf(controllerSA)]
	if b.res.seedReqs["list nodes"] == 0 {
		t.Fatalf("the audit log shows no node list by the seed daemon in %s:\n%s", b.res.steady, tail(seed.logText(), 10))
	}
	if len(b.res.syncReqs) == 0 {
		t.Fatal("the audit log shows no request of the controller during its initial sync")
	}
	t.Logf("steady state over %s: controller RSS %.0f MB, CPU %.1f%% of a core, %d requests; seed %d requests",
		b.res.steady.Round(time.Second), mb(b.res.steadyRSS), 100*b.res.steadyCPU, b.res.ctrlReqs.total(), b.res.seedReqs.total())
}

// maxLeaseAge is the oldest renewTime among the node Leases, all nodes
// being up: whether kwok keeps renewing every Lease every quarter of its
// duration at this size.
func (b *bench) maxLeaseAge(ctx context.Context) (time.Duration, int) {
	l, err := b.e.Kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	oldest := time.Duration(0)
	for _, lease := range l.Items {
		if lease.Spec.RenewTime != nil {
			oldest = max(oldest, time.Since(lease.Spec.RenewTime.Time))
		}
	}
	return oldest, len(l.Items)
}

// detectVictim powers the victim off and measures the time from the end
// of its window (its Lease's last renewTime + unhealthyAfter) to its
// Takeover's Detected, then waits for its workloads to be Ready elsewhere.
func (b *bench) detectVictim(ctx context.Context) {
	t := b.t
	if err := b.e.C.PowerOff(victim); err != nil {
		t.Fatal(err)
	}
	lease, err := b.e.Kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, victim, metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil {
		t.Fatalf("Lease of %s: %v", victim, err)
	}
	windowEnd := lease.Spec.RenewTime.Add(b.sz.window)
	tk := b.waitTakeover(ctx, victim, v1alpha1.PhaseDetected, b.sz.window+2*time.Minute)
	b.res.lag = tk.PhaseTime(v1alpha1.PhaseDetected).Sub(windowEnd)
	t.Logf("victim %s: Detected %.3f s after the end of its window", victim, b.res.lag.Seconds())
	b.waitTakeover(ctx, victim, v1alpha1.PhaseWorkloadsReady, 5*time.Minute)
	b.onlyTakeovers(ctx, map[string]bool{victim: true})
}

// waitTakeover waits until the node's Takeover has entered phase.
func (b *bench) waitTakeover(ctx context.Context, node string, phase v1alpha1.Phase, timeout time.Duration) v1alpha1.Takeover {
	deadline := time.Now().Add(timeout)
	for {
		l, err := b.e.Takeovers(ctx, node)
		if err == nil && len(l) > 0 && l[len(l)-1].PhaseTime(phase) != nil {
			return l[len(l)-1]
		}
		if time.Now().After(deadline) {
			state := "none"
			if len(l) > 0 {
				st := l[len(l)-1].Status
				state = string(st.Phase) + " (" + st.Reason + ": " + st.Message + ")"
			}
			b.t.Fatalf("Takeover of %s did not reach %s within %s: %s (err %v)", node, phase, timeout, state, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// onlyTakeovers fails unless every Takeover is of a node in dead: no
// healthy node was taken over or fenced.
func (b *bench) onlyTakeovers(ctx context.Context, dead map[string]bool) []v1alpha1.Takeover {
	l := &v1alpha1.TakeoverList{}
	if err := b.e.TK.List(ctx, l); err != nil {
		b.t.Fatal(err)
	}
	for _, tk := range l.Items {
		if !dead[tk.Spec.NodeName] {
			b.t.Errorf("Takeover %s of node %s, which is up (phase %s, fence attempts %d)",
				tk.Name, tk.Spec.NodeName, tk.Status.Phase, tk.Status.FenceAttempts)
		}
	}
	return l.Items
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fenceReadyEverywhere reports, as an error, the nodes without liberator's
// FenceReady condition yet.
func (b *bench) fenceReadyEverywhere(ctx context.Context) error {
	nodes, err := b.e.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	missing := 0
	for _, n := range nodes.Items {
		if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp {
			continue
		}
		found := false
		for _, c := range n.Status.Conditions {
			found = found || c.Type == "FenceReady"
		}
		if !found {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d nodes have no FenceReady condition yet", missing, len(nodes.Items))
	}
	return nil
}
