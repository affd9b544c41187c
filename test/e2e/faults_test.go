//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/redfishsim"
)

// The fault suite: control-plane faults, leader changes, objects deleted
// under the controller, and kubelets alive but NotReady. Every scenario
// runs on its own bed, fences through a simulated BMC per worker, and ends
// with the oracle's RESULT line (see oracle).

// faultLab is a bed whose workers each have a simulated Redfish BMC that
// powers the bed's node off for real, and the oracle over them.
type faultLab struct {
	*env
	bmcs map[string]*redfishsim.BMC
	o    *oracle

	mu   sync.Mutex
	ctls []*controllerProc
}

const bmcUser, bmcPassword = "admin", "fault-lab-pw"

func newFaultLab(t *testing.T, scenario string, workers int) *faultLab {
	t.Helper()
	e := newEnv(t, bed.Options{Workers: workers, LeaseDurationSeconds: fastLease})
	l := &faultLab{env: e, bmcs: map[string]*redfishsim.BMC{}}
	for _, node := range e.c.Nodes() {
		if node == bed.ControlPlaneNode {
			continue
		}
		b, err := redfishsim.Start(redfishsim.Options{
			Name: node, User: bmcUser, Password: bmcPassword,
			PowerOff: func() {
				if err := e.c.PowerOff(node); err != nil {
					t.Logf("BMC of %s: power off: %v", node, err)
				}
			},
			PowerOn: func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := e.c.PowerOn(ctx, node); err != nil {
					t.Logf("BMC of %s: power on: %v", node, err)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		l.bmcs[node] = b
	}
	_, err := e.kube.CoreV1().Secrets("tkr-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bmc-credentials", Namespace: "tkr-system"},
		StringData: map[string]string{"username": bmcUser, "password": bmcPassword},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.o = newOracle(e, scenario, func() map[string]int {
		out := map[string]int{}
		for n, b := range l.bmcs {
			out[n] = b.ForceOffs()
		}
		return out
	})
	return l
}

// config is the fast profile fencing every worker through its Redfish BMC;
// extra is more top-level YAML.
func (l *faultLab) config(extra string) string {
	var nodes strings.Builder
	for _, name := range slices.Sorted(maps.Keys(l.bmcs)) {
		b := l.bmcs[name]
		fmt.Fprintf(&nodes, "      %s: {address: %q, port: %d}\n", name, b.Address, b.Port)
	}
	return `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: 10s
healthyDelay: 5s
fenceCheckInterval: 0s
fencing:
  classes:
  - name: bmc
    provider: redfish
    credentialsSecret: bmc-credentials
    insecureSkipVerify: true
    timeout: 10s
    nodes:
` + nodes.String() + extra
}

// lead starts a controller and waits until it leads.
func (l *faultLab) lead(name, cfg string) *controllerProc {
	l.t.Helper()
	p := l.startController(name, cfg)
	l.waitLeader(p, time.Minute)
	l.mu.Lock()
	l.ctls = append(l.ctls, p)
	l.mu.Unlock()
	return p
}

// cutOff disconnects a node that keeps running its workloads.
func (l *faultLab) cutOff(node string) {
	l.t.Helper()
	if err := l.c.CutOff(node); err != nil {
		l.t.Fatal(err)
	}
	l.o.fail(node)
}

// explainLease logs what the API server and the node's kwok say of its
// Lease: whether it kept renewing.
func (l *faultLab) explainLease(node string) {
	lease, err := l.kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), node, metav1.GetOptions{})
	if err == nil {
		l.t.Logf("Lease of %s now: holder %v, renewTime %v, resourceVersion %s", node, ptrStr(lease.Spec.HolderIdentity), lease.Spec.RenewTime, lease.ResourceVersion)
	} else {
		l.t.Logf("Lease of %s: %v", node, err)
	}
	l.t.Logf("bed history of %s: %+v", node, l.c.History(node))
	if raw, err := os.ReadFile(l.c.NodeLog(node)); err == nil {
		l.t.Logf("kwok log of %s (last lines):\n%s", node, tail(string(raw), 30))
	}
}

func ptrStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// otherWorkers returns the workers other than those named.
func (l *faultLab) otherWorkers(not ...string) []string {
	var out []string
	for _, n := range l.c.Nodes() {
		if n != bed.ControlPlaneNode && !slices.Contains(not, n) {
			out = append(out, n)
		}
	}
	return out
}

// phases renders a node's Takeovers for the outcome: each one's phases in
// order, "none" when there is none.
func (l *faultLab) phases(node string) string {
	var out []string
	for _, tk := range l.takeovers(node) {
		var ps []string
		for _, tr := range tk.Status.Timeline {
			ps = append(ps, string(tr.Phase)+"("+tr.Reason+")")
		}
		out = append(out, strings.Join(ps, ">"))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// logTimelines logs every Takeover of the nodes relative to the scenario's
// start.
func (l *faultLab) logTimelines(nodes ...string) {
	for _, n := range nodes {
		for _, tk := range l.takeovers(n) {
			timeline(l.t, l.o.scenario, l.o.start, tk)
		}
	}
}

// noTakeoverActed fails when a Takeover of the node reached Fencing or
// beyond.
func (l *faultLab) noTakeoverActed(node string) {
	l.t.Helper()
	for _, tk := range l.takeovers(node) {
		for _, p := range []v1alpha1.Phase{v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased} {
			if tk.PhaseTime(p) != nil {
				l.t.Errorf("%s was acted on: Takeover %s reached %s: %s", node, tk.Name, p, l.phases(node))
			}
		}
	}
	if release.HasLiberatorTaint(l.node(node)) {
		l.t.Errorf("%s carries liberator's taint", node)
	}
}

// keepControllerRunning starts a replacement for every controller that
// exited (a leader that cannot renew its Lease exits; in a cluster its
// Deployment restarts it) and returns the names of those replaced.
func (l *faultLab) keepControllerRunning(cfg string) []string {
	l.t.Helper()
	l.mu.Lock()
	ctls := slices.Clone(l.ctls)
	l.mu.Unlock()
	var restarted []string
	for i, p := range ctls {
		if !p.Exited() {
			continue
		}
		l.t.Logf("controller %s exited; last lines:\n%s", p.Name, tail(p.logText(), 8))
		np := l.startController(fmt.Sprintf("%s-r%d", p.Name, i+1), cfg)
		l.mu.Lock()
		l.ctls = append(l.ctls, np)
		l.mu.Unlock()
		restarted = append(restarted, p.Name)
	}
	return restarted
}

// leader returns the running controller that leads, waiting up to timeout.
func (l *faultLab) leader(timeout time.Duration) *controllerProc {
	l.t.Helper()
	var got *controllerProc
	l.waitFor("a leading controller", timeout, func() (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, p := range l.ctls {
			if p.Exited() {
				continue
			}
			if v, err := metricValue(p, "liberator_leader"); err == nil && v == 1 {
				got = p
				return true, nil
			}
		}
		return false, nil
	})
	return got
}

// takeOverControl cuts off mysql-0's node and waits for mysql-0 Ready
// elsewhere: the positive control that the controller acts.
func (l *faultLab) takeOverControl(node string, timeout time.Duration) string {
	l.t.Helper()
	t0 := time.Now()
	l.cutOff(node)
	p := l.readyPod("default", "mysql-0", node, timeout)
	return fmt.Sprintf("control: %s cut off, mysql-0 Ready on %s after %.1fs", node, p.Spec.NodeName, time.Since(t0).Seconds())
}

// Admission policies that hold the controller at a step.

// denyPolicy creates a ValidatingAdmissionPolicy and its binding that deny
// the operations on the resources when expression is false, and returns the
// function that removes them.
func (e *env) denyPolicy(name string, rules []admissionv1.NamedRuleWithOperations, expression, message string) func() {
	e.t.Helper()
	ctx := context.Background()
	fail := admissionv1.Fail
	ap := e.kube.AdmissionregistrationV1()
	_, err := ap.ValidatingAdmissionPolicies().Create(ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: rules},
			Validations:      []admissionv1.Validation{{Expression: expression, Message: message}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create ValidatingAdmissionPolicy %s: %v", name, err)
	}
	_, err = ap.ValidatingAdmissionPolicyBindings().Create(ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: name, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create ValidatingAdmissionPolicyBinding %s: %v", name, err)
	}
	// The API server compiles the policy and starts enforcing it within a
	// second or two.
	time.Sleep(3 * time.Second)
	removed := false
	remove := func() {
		if removed {
			return
		}
		removed = true
		_ = ap.ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = ap.ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		time.Sleep(3 * time.Second)
	}
	e.t.Cleanup(remove)
	return remove
}

func rule(group, resource string, ops ...admissionv1.OperationType) []admissionv1.NamedRuleWithOperations {
	return []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
		Operations: ops,
		Rule: admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"},
			Resources: []string{resource, resource + "/status"}},
	}}}
}

// holdRelease keeps every Takeover from recording that its release began,
// so an incident stays Fenced with nothing released.
func (e *env) holdRelease() func() {
	return e.denyPolicy("hold-release", rule("liberator.dev", "takeovers", admissionv1.Update),
		"!has(object.status) || !has(object.status.releaseStarted)", "release held by the test")
}

// holdFence keeps every Takeover from recording phase Fencing, so an
// incident stays before its first fence attempt.
func (e *env) holdFence() func() {
	return e.denyPolicy("hold-fence", rule("liberator.dev", "takeovers", admissionv1.Create, admissionv1.Update),
		"!has(object.status) || !has(object.status.phase) || object.status.phase != 'Fencing'", "fencing held by the test")
}

// TestFaults is the fault suite; each subtest is one scenario on its own
// bed and can run alone (-run 'TestFaults/EtcdFrozen15s').
func TestFaults(t *testing.T) {
	t.Parallel()
	t.Run("APIServerDown60s", func(t *testing.T) {
		t.Parallel()
		controlPlaneOutage(t, "APIServerDown60s", 60*time.Second, func(c *bed.Cluster) error { return c.StopComponent(bed.KubeAPIServer) },
			func(ctx context.Context, c *bed.Cluster) error { return c.StartComponent(ctx, bed.KubeAPIServer) })
	})
	for _, d := range []time.Duration{15 * time.Second, 60 * time.Second} {
		name := fmt.Sprintf("EtcdFrozen%ds", int(d.Seconds()))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			controlPlaneOutage(t, name, d, func(c *bed.Cluster) error { return c.FreezeComponent(bed.Etcd) },
				func(ctx context.Context, c *bed.Cluster) error {
					if err := c.ThawComponent(bed.Etcd); err != nil {
						return err
					}
					return c.WaitAPIReady(ctx, time.Minute)
				})
		})
	}
	for _, standby := range []bool{true, false} {
		for _, phase := range []v1alpha1.Phase{v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased} {
			kind := "ColdStart"
			if standby {
				kind = "Standby"
			}
			name := "LeaderRestart" + kind + "In" + string(phase)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				leaderRestart(t, name, standby, phase)
			})
		}
	}
	t.Run("NodeDeletedMidIncident", func(t *testing.T) {
		t.Parallel()
		nodeDeletedMidIncident(t)
	})
	for _, status := range []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionUnknown} {
		name := "Ready" + string(status) + "LeaseRenewing"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			notReadyLeaseRenewing(t, name, status)
		})
	}
	for _, cut := range []int{2, 3} {
		name := fmt.Sprintf("Partition%dPercent", cut*20)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			partition(t, name, cut)
		})
	}
	t.Run("ReleaseDeniedByAdmission", func(t *testing.T) {
		t.Parallel()
		releaseDenied(t)
	})
	for _, phase := range []v1alpha1.Phase{v1alpha1.PhasePaused, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased} {
		name := "TakeoverDeletedIn" + string(phase)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			takeoverDeleted(t, name, phase)
		})
	}
}

// controlPlaneOutage takes the API server or etcd away for d while every
// node stays healthy: nothing may be opened or fenced, during the outage
// or once the view returns. Then mysql-0's node is cut off, to show the

// restoreControlPlane ends a control-plane outage: up brings the held
// component back, the bed revives the components that exited meanwhile,
// restarts the kwok processes that never recover (after two renewals, see
// bed.RestartStuckKwok) and the controllers that exited. It returns when up
// had the API server back, and what it restarted.
func (l *faultLab) restoreControlPlane(cfg string, up func(context.Context, *bed.Cluster) error) (back time.Time, revived, stuck, restarted []string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := up(ctx, l.c); err != nil {
		l.t.Fatal(err)
	}
	back = time.Now()
	revived, err := l.c.ReviveComponents(ctx)
	if err != nil {
		l.t.Logf("reviving components: %v", err)
	}
	time.Sleep(5 * time.Second)
	if stuck, err = l.c.RestartStuckKwok(ctx, 5*time.Second); err != nil {
		l.t.Fatal(err)
	}
	return back, revived, stuck, l.keepControllerRunning(cfg)
}

// controller still acts.
func controlPlaneOutage(t *testing.T, scenario string, d time.Duration, down func(*bed.Cluster) error, up func(context.Context, *bed.Cluster) error) {
	l := newFaultLab(t, scenario, 3)
	cfg := l.config("")
	l.lead("liberator-a", cfg)
	old := l.deployMySQL()
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := l.c.WatchComponents(wctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := down(l.c); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: control plane fault for %s", scenario, d)
	blindSeen, exitedAt := false, time.Duration(0)
	begin := time.Now()
	for time.Since(begin) < d {
		time.Sleep(time.Second)
		l.mu.Lock()
		for _, p := range l.ctls {
			if v, err := metricValue(p, "liberator_view_blind"); err == nil && v == 1 {
				blindSeen = true
			}
			if p.Exited() && exitedAt == 0 {
				exitedAt = time.Since(begin)
			}
		}
		l.mu.Unlock()
	}
	_, revived, stuck, restarted := l.restoreControlPlane(cfg, up)
	t.Logf("control plane back after %.0fs; components restarted: %v; kwok restarted: %v; controllers restarted: %v", time.Since(begin).Seconds(), revived, stuck, restarted)
	// Three windows with every node renewing again.
	time.Sleep(30 * time.Second)
	for _, n := range l.otherWorkers() {
		if tks := l.takeovers(n); len(tks) > 0 {
			t.Errorf("healthy node %s got a Takeover after the outage: %s", n, l.phases(n))
			l.explainLease(n)
		}
		l.noTakeoverActed(n)
	}
	if t.Failed() {
		t.FailNow()
	}
	leader := l.leader(time.Minute)
	control := l.takeOverControl(old, 3*time.Minute)
	l.logTimelines(old)
	exited := "no"
	switch {
	case exitedAt > 0:
		exited = fmt.Sprintf("at+%.0fs", exitedAt.Seconds())
	case len(restarted) > 0:
		exited = "after_the_fault"
	}
	l.o.finish(fmt.Sprintf("viewBlindSeen=%v controllerExited=%s componentsRestarted=%v kwokRestarted=%v leaderAfter=%s healthyTakeovers=0; %s; %s", blindSeen, exited, revived, stuck, leader.Name, control, l.phases(old)))
}

// leaderRestart kills the leader while mysql-0's node's incident is in
// phase, and lets a standby (or a new single replica) finish it: one
// Takeover, the node powered off, mysql-0 released once and never deleted
// again.
func leaderRestart(t *testing.T, scenario string, standby bool, phase v1alpha1.Phase) {
	l := newFaultLab(t, scenario, 2)
	cfg := l.config("")
	a := l.lead("liberator-a", cfg)
	var b *controllerProc
	if standby {
		b = l.startController("liberator-b", cfg)
		l.waitFor("liberator-b to stand by", time.Minute, func() (bool, error) {
			return strings.Contains(b.logText(), "standing by"), nil
		})
		l.mu.Lock()
		l.ctls = append(l.ctls, b)
		l.mu.Unlock()
	}
	old := l.deployMySQL()
	var unhold func()
	switch phase {
	case v1alpha1.PhaseFencing:
		l.bmcs[old].SetOffDelay(6 * time.Second)
	case v1alpha1.PhaseFenced:
		unhold = l.holdRelease()
	}
	t0 := time.Now()
	l.cutOff(old)
	l.takeoverIn(old, phase, time.Minute)
	a.kill()
	t.Logf("killed the leader liberator-a in %s, %.1fs after the cut", phase, time.Since(t0).Seconds())
	if !standby {
		b = l.startController("liberator-b", cfg)
		l.mu.Lock()
		l.ctls = append(l.ctls, b)
		l.mu.Unlock()
	}
	l.waitLeader(b, time.Minute)
	led := time.Since(t0)
	if unhold != nil {
		if tk := l.takeovers(old); tk[len(tk)-1].PhaseTime(v1alpha1.PhaseReleased) != nil {
			t.Errorf("released while the release was held: %s", l.phases(old))
		}
		unhold()
	}
	p := l.readyPod("default", "mysql-0", old, 2*time.Minute)
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	time.Sleep(5 * time.Second)
	if uid, _ := l.podUID("default", "mysql-0"); uid != string(p.UID) {
		t.Errorf("the replacement mysql-0 was deleted again")
	}
	counts := map[v1alpha1.Phase]int{}
	for _, tr := range tk.Status.Timeline {
		counts[tr.Phase]++
	}
	if n := len(l.takeovers(old)); n != 1 {
		t.Errorf("%d Takeovers for %s, want 1: %s", n, old, l.phases(old))
	}
	if counts[v1alpha1.PhaseReleased] != 1 || counts[v1alpha1.PhaseFenced] != 1 {
		t.Errorf("timeline %v: want one Fenced and one Released", counts)
	}
	if l.bmcs[old].ForceOffs() == 0 {
		t.Errorf("%s was released without a power-off", old)
	}
	l.logTimelines(old)
	l.o.finish(fmt.Sprintf("leader killed in %s; liberator-b led at T+%.1fs; mysql-0 Ready on %s at T+%.1fs; fenceAttempts=%d; %s",
		phase, led.Seconds(), p.Spec.NodeName, time.Since(t0).Seconds(), tk.Status.FenceAttempts, l.phases(old)))
}

// nodeDeletedMidIncident deletes the Node object of a cut-off node before
// the controller's first fence attempt: the node must still be powered
// off (by name) before mysql-0 runs elsewhere.
func nodeDeletedMidIncident(t *testing.T) {
	l := newFaultLab(t, "NodeDeletedMidIncident", 2)
	cfg := l.config("")
	l.lead("liberator-a", cfg)
	old := l.deployMySQL()
	unhold := l.holdFence()
	t0 := time.Now()
	l.cutOff(old)
	l.waitFor("a Takeover of "+old, time.Minute, func() (bool, error) { return len(l.takeovers(old)) > 0, nil })
	if err := l.kube.CoreV1().Nodes().Delete(context.Background(), old, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted Node %s at T+%.1fs, its Takeover %s", old, time.Since(t0).Seconds(), l.phases(old))
	time.Sleep(3 * time.Second)
	heldOffs := l.bmcs[old].ForceOffs()
	unhold()
	p := l.readyPod("default", "mysql-0", old, 3*time.Minute)
	ready := time.Since(t0)
	l.waitFor("the Takeover of "+old+" Released", time.Minute, func() (bool, error) {
		tks := l.takeovers(old)
		return len(tks) > 0 && tks[len(tks)-1].PhaseTime(v1alpha1.PhaseReleased) != nil, nil
	})
	if l.bmcs[old].ForceOffs() == 0 {
		t.Errorf("%s was never powered off; mysql-0 moved to %s", old, p.Spec.NodeName)
	}
	l.logTimelines(old)
	l.o.finish(fmt.Sprintf("Node deleted before fencing; powerOffs while Fencing could not be recorded=%d; mysql-0 Ready on %s at T+%.1fs; %s",
		heldOffs, p.Spec.NodeName, ready.Seconds(), l.phases(old)))
}

// notReadyLeaseRenewing holds mysql-0's node's Ready condition at status
// while its Lease keeps renewing: it must only be reported. Another worker,
// cut off meanwhile, must be taken over (the controller acts).
func notReadyLeaseRenewing(t *testing.T, scenario string, status corev1.ConditionStatus) {
	l := newFaultLab(t, scenario, 3)
	ctl := l.lead("liberator-a", l.config(""))
	old := l.deployMySQL()
	before, _ := l.podUID("default", "mysql-0")
	ctx := context.Background()
	if err := l.c.HoldReady(ctx, old, status, "KubeletNotReady", "container runtime network not ready (held by the test)"); err != nil {
		t.Fatal(err)
	}
	control := l.otherWorkers(old)[0]
	l.cutOff(control)
	maxReported := 0.0
	begin := time.Now()
	for time.Since(begin) < 35*time.Second {
		if v, err := metricValue(ctl, "liberator_nodes_not_ready_lease_renewing"); err == nil && v > maxReported {
			maxReported = v
		}
		time.Sleep(time.Second)
	}
	n := l.node(old)
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != status {
			t.Errorf("Ready of %s is %s, not held at %s: the scenario did not hold", old, c.Status, status)
		}
	}
	tk := l.takeoverIn(control, v1alpha1.PhaseReleased, time.Minute)
	l.noTakeoverActed(old)
	if uid, node := l.podUID("default", "mysql-0"); uid != before || node != old {
		t.Errorf("mysql-0 moved or was deleted (uid %s on %s)", uid, node)
	}
	if maxReported < 1 {
		t.Errorf("liberator_nodes_not_ready_lease_renewing never reported %s", old)
	}
	if err := l.c.ReleaseReady(ctx, old); err != nil {
		t.Fatal(err)
	}
	l.logTimelines(control)
	l.o.finish(fmt.Sprintf("%s Ready=%s 35s with Lease renewing: takeovers %s, liberator_nodes_not_ready_lease_renewing max %.0f; control %s: %s",
		old, status, l.phases(old), maxReported, control, l.phases(tk.Spec.NodeName)))
}

// partition cuts cut of 5 workers off at once (mysql-0's among them) with
// IPMI fencing and maxUnhealthy 40%: 2 are taken over, 3 trip the storm
// guard and nothing is fenced.
func partition(t *testing.T, scenario string, cut int) {
	requireIPMI(t)
	e := newEnv(t, bed.Options{Workers: 5, LeaseDurationSeconds: fastLease})
	lab := e.startIPMILab(fmt.Sprintf("part-%d-%d", cut, time.Now().UnixNano()%1e6))
	o := newOracle(e, scenario, lab.powerOffs)
	var nodes strings.Builder
	for _, name := range slices.Sorted(maps.Keys(lab.bmcs)) {
		fmt.Fprintf(&nodes, "      %s: {address: %s, port: %d}\n", name, lab.bmcs[name].Addr, lab.bmcs[name].Port)
	}
	cfg := `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: 10s
healthyDelay: 5s
maxUnhealthy: "40%"
fenceCheckInterval: 0s
fencing:
  classes:
  - name: ipmi
    provider: fence-agent
    agent: fence_ipmilan
    options: {lanplus: "1", cipher: "3", power_wait: "0"}
    credentialsSecret: bmc-credentials
    timeout: 20s
    nodes:
` + nodes.String()
	ctl := e.startController("liberator-a", cfg)
	e.waitLeader(ctl, time.Minute)
	old := e.deployMySQL()
	before, _ := e.podUID("default", "mysql-0")
	victims := []string{old}
	for _, n := range e.c.Nodes() {
		if n != old && n != bed.ControlPlaneNode && len(victims) < cut {
			victims = append(victims, n)
		}
	}
	t0 := time.Now()
	for _, n := range victims {
		o.fail(n)
		if err := e.c.CutOff(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("cut off %v of 5 workers at once (maxUnhealthy 40%% = 2)", victims)
	var outcome string
	if cut <= 2 {
		p := e.readyPod("default", "mysql-0", old, 3*time.Minute)
		for _, n := range victims {
			tk := e.takeoverIn(n, v1alpha1.PhaseReleased, 2*time.Minute)
			checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased)
			timeline(t, scenario, t0, tk)
		}
		outcome = fmt.Sprintf("%v taken over; mysql-0 Ready on %s at T+%.1fs", victims, p.Spec.NodeName, time.Since(t0).Seconds())
	} else {
		for _, n := range victims {
			tk := e.takeoverIn(n, v1alpha1.PhasePaused, time.Minute)
			if tk.Status.Reason != "StormGuard" {
				t.Errorf("%s paused for %s, want StormGuard", n, tk.Status.Reason)
			}
		}
		time.Sleep(30 * time.Second)
		var states []string
		for _, n := range victims {
			for _, tk := range e.takeovers(n) {
				if tk.PhaseTime(v1alpha1.PhaseFencing) != nil || tk.PhaseTime(v1alpha1.PhaseReleased) != nil {
					t.Errorf("storm guard on, yet %s was acted on: %+v", n, tk.Status.Timeline)
				}
				states = append(states, n+":"+string(tk.Status.Phase)+"("+tk.Status.Reason+")")
			}
		}
		if uid, node := e.podUID("default", "mysql-0"); uid != before || node != old {
			t.Errorf("mysql-0 moved (uid %s on %s) while the storm guard held", uid, node)
		}
		if v, _ := metricValue(ctl, "liberator_storm_guard_active"); v != 1 {
			t.Errorf("liberator_storm_guard_active %v, want 1", v)
		}
		outcome = fmt.Sprintf("storm guard held %v for 30s after all paused: %s", victims, strings.Join(states, ","))
	}
	o.finish(outcome)
}

// releaseDenied denies the deletion of mysql-0 by anyone while its node is
// taken over: the release is held up, nothing healthy is fenced, the
// incident is not closed as if nothing was released, and the release
// completes once the policy is removed.
func releaseDenied(t *testing.T) {
	l := newFaultLab(t, "ReleaseDeniedByAdmission", 2)
	l.lead("liberator-a", l.config(""))
	old := l.deployMySQL()
	before, _ := l.podUID("default", "mysql-0")
	unhold := l.denyPolicy("deny-mysql-delete", rule("", "pods", admissionv1.Delete),
		"oldObject.metadata.name != 'mysql-0'", "mysql-0 may not be deleted (test policy)")
	t0 := time.Now()
	l.cutOff(old)
	l.takeoverIn(old, v1alpha1.PhaseFenced, time.Minute)
	time.Sleep(20 * time.Second)
	tks := l.takeovers(old)
	held := tks[len(tks)-1]
	if held.Status.Phase == v1alpha1.PhaseRecovered {
		t.Errorf("the incident closed while its release was denied: %s", l.phases(old))
	}
	if uid, _ := l.podUID("default", "mysql-0"); uid != before {
		t.Errorf("mysql-0 was deleted although the policy denies it")
	}
	heldState := fmt.Sprintf("%s(%s: %s)", held.Status.Phase, held.Status.Reason, held.Status.Message)
	outOfService := release.HasTaint(l.node(old))
	if outOfService {
		t.Errorf("the out-of-service taint was added while the node's pod could not be deleted: it comes only once the pods are gone")
	}
	unhold()
	p := l.readyPod("default", "mysql-0", old, 3*time.Minute)
	tk := l.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, 2*time.Minute)
	if len(tk.Status.MovedPods) == 0 {
		t.Errorf("the Takeover records no moved pod: %+v", tk.Status)
	}
	l.logTimelines(old)
	l.o.finish(fmt.Sprintf("while denied 20s: %s outOfServiceTaint=%v; after removal mysql-0 Ready on %s at T+%.1fs; %s",
		heldState, outOfService, p.Spec.NodeName, time.Since(t0).Seconds(), l.phases(old)))
}

// takeoverDeleted deletes mysql-0's node's Takeover in phase while the node
// stays dead, and reports what the controller does; the node must not be
// forgotten (a Takeover exists for it again), and the oracle must hold.
func takeoverDeleted(t *testing.T, scenario string, phase v1alpha1.Phase) {
	l := newFaultLab(t, scenario, 3)
	extra := ""
	if phase == v1alpha1.PhasePaused {
		extra = "maxUnhealthy: 1\n"
	}
	l.lead("liberator-a", l.config(extra))
	old := l.deployMySQL()
	other := l.otherWorkers(old)[0]
	var unhold func()
	switch phase {
	case v1alpha1.PhasePaused:
		// Two nodes down with maxUnhealthy 1: the storm guard pauses both.
		l.cutOff(other)
	case v1alpha1.PhaseFenced:
		unhold = l.holdRelease()
	}
	t0 := time.Now()
	l.cutOff(old)
	tk := l.takeoverIn(old, phase, time.Minute)
	if err := l.tk.Delete(context.Background(), &tk); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted Takeover %s in %s at T+%.1fs", tk.Name, phase, time.Since(t0).Seconds())
	if unhold != nil {
		unhold()
	}
	reopened := "no"
	l.waitFor("the node not forgotten: a Takeover of "+old+" again", 45*time.Second, func() (bool, error) {
		tks := l.takeovers(old)
		if len(tks) > 0 {
			reopened = fmt.Sprintf("yes, %s at T+%.1fs", tks[0].Name, time.Since(t0).Seconds())
			return true, nil
		}
		return false, nil
	})
	switch phase {
	case v1alpha1.PhasePaused:
		// The other node returns: the storm lifts and mysql-0's node is
		// taken over.
		if err := l.c.PowerOn(context.Background(), other); err != nil {
			t.Fatal(err)
		}
		l.readyPod("default", "mysql-0", old, 3*time.Minute)
	case v1alpha1.PhaseFenced:
		l.readyPod("default", "mysql-0", old, 3*time.Minute)
	case v1alpha1.PhaseReleased:
		time.Sleep(20 * time.Second)
	}
	p, err := l.pod("default", "mysql-0")
	if err != nil {
		t.Fatalf("mysql-0: %v", err)
	}
	if p.Spec.NodeName == old {
		t.Errorf("mysql-0 still on %s", old)
	}
	l.logTimelines(old)
	l.o.finish(fmt.Sprintf("Takeover deleted in %s; reopened=%s; mysql-0 on %s; now %s; powerOffs of %s=%d",
		phase, reopened, p.Spec.NodeName, l.phases(old), old, l.bmcs[old].ForceOffs()))
}
