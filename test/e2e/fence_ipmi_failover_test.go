//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/ipmisim"
)

// ipmiLab gives every worker of the bed its own BMC simulator. A BMC
// turning the power off powers the bed's node off (its workloads stop); a
// BMC turning it on boots the node (new bootID). The BMCs share one
// account, whose credentials are in the Secret tkr-system/bmc-credentials.
type ipmiLab struct {
	bmcs map[string]*ipmisim.BMC
}

func (e *env) startIPMILab(password string) *ipmiLab {
	e.t.Helper()
	lab := &ipmiLab{bmcs: map[string]*ipmisim.BMC{}}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	dir := e.t.TempDir()
	for _, node := range e.c.Nodes() {
		if node == bed.ControlPlaneNode {
			continue
		}
		bmc, err := ipmisim.Start(ctx, ipmisim.Options{Name: node, Dir: dir, User: "admin", Password: password})
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { _ = bmc.Stop() })
		lab.bmcs[node] = bmc
		go bmc.Watch(ctx, func(on bool) {
			if !on {
				if err := e.c.PowerOff(node); err != nil {
					e.t.Logf("BMC of %s: power off: %v", node, err)
				}
				return
			}
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := e.c.PowerOn(pctx, node); err != nil {
				e.t.Logf("BMC of %s: power on: %v", node, err)
			}
		})
	}
	_, err := e.kube.CoreV1().Secrets("tkr-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bmc-credentials", Namespace: "tkr-system"},
		StringData: map[string]string{"username": "admin", "password": password},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return lab
}

// config is the controller configuration: one fence-agent class for all
// workers, fence_ipmilan with RMCP+ cipher suite 3, each node its BMC port.
func (lab *ipmiLab) config(extra string) string {
	var nodes strings.Builder
	for name, b := range lab.bmcs {
		fmt.Fprintf(&nodes, "      %s: {address: %s, port: %d}\n", name, b.Addr, b.Port)
	}
	return `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
fenceCheckInterval: 3s
fencing:
  classes:
  - name: ipmi
    provider: fence-agent
    agent: fence_ipmilan
    options: {lanplus: "1", cipher: "3", power_wait: "0"}
    credentialsSecret: bmc-credentials
    timeout: 10s
    nodes:
` + nodes.String() + extra
}

// fenceReady waits for the node's FenceReady condition to have status.
func (e *env) fenceReady(node string, status corev1.ConditionStatus, timeout time.Duration) corev1.NodeCondition {
	e.t.Helper()
	var got corev1.NodeCondition
	e.waitFor(fmt.Sprintf("FenceReady=%s on %s", status, node), timeout, func() (bool, error) {
		for _, c := range e.node(node).Status.Conditions {
			if c.Type == "FenceReady" {
				got = c
				return c.Status == status, fmt.Errorf("FenceReady %s %s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, nil
	})
	return got
}

// The seed's MySQL, fenced through IPMI: the node of mysql-0 is cut off
// from the network (its heartbeats stop, but it keeps running and its BMC
// says the power is on). liberator must power it off through fence_ipmilan,
// read OFF back, and only then release mysql-0.
func TestMySQLFailoverIPMI(t *testing.T) {
	t.Parallel()
	requireIPMI(t)
	for _, prof := range []struct {
		name   string
		lease  int
		config string
	}{
		{"default", 0, ""},
		{"fast", fastLease, "unhealthyAfter: 10s\nhealthyDelay: 5s\n"},
	} {
		t.Run(prof.name, func(t *testing.T) {
			t.Parallel()
			mysqlFailoverIPMI(t, prof.name, prof.lease, prof.config)
		})
	}
}

func mysqlFailoverIPMI(t *testing.T, profile string, lease int, config string) {
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: lease})
	// IPMI passwords hold at most 16 bytes (20 with IPMI 2.0).
	lab := e.startIPMILab("ipmi-" + profile[:1] + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10))
	e.startController("liberator-a", lab.config(config))
	for node := range lab.bmcs {
		c := e.fenceReady(node, corev1.ConditionTrue, time.Minute)
		if c.Reason != "FencePathOK" || !strings.Contains(c.Message, "power is on") {
			t.Fatalf("%s: FenceReady %+v", node, c)
		}
	}
	old := e.deployMySQL()
	t.Logf("mysql-0 runs on %s; cutting %s off the network (its BMC still says on)", old, old)
	o := newOracle(e, "scenario=ipmi_"+profile, lab.powerOffs)
	e.controllerWatching(old)
	o.fail(old)

	t0 := time.Now()
	if err := e.c.CutOff(old); err != nil {
		t.Fatal(err)
	}
	// Before anything is fenced, the old node still runs mysql-0: that is
	// what makes a release before the power-off a split brain.
	if !e.c.StillRunning(old) {
		t.Fatalf("%s does not run its workloads after CutOff: the scenario would prove nothing", old)
	}
	p := e.readyPod("default", "mysql-0", old, 3*time.Minute)
	rto := time.Since(t0)
	// The bed's own record: the old node was powered off (by its BMC)
	// before the new mysql-0 turned Ready.
	var readyAt time.Time
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			readyAt = c.LastTransitionTime.Time
		}
	}
	var powerOff time.Time
	for _, tr := range e.c.History(old) {
		if tr.State == "off" && tr.Time.After(t0) && powerOff.IsZero() {
			powerOff = tr.Time
		}
	}
	// Ready's lastTransitionTime has a resolution of one second.
	if powerOff.IsZero() || powerOff.After(readyAt.Add(time.Second)) {
		t.Fatalf("mysql-0 Ready on %s at %s while the old node ran it until %v: split brain", p.Spec.NodeName, readyAt.Format(time.RFC3339Nano), powerOff)
	}
	ev := lab.bmcs[old].Events()
	if len(ev) == 0 || !strings.HasSuffix(ev[0], "power 0") {
		t.Fatalf("BMC of %s events %q, want a power off", old, ev)
	}
	offAt, err := strconv.ParseFloat(strings.Fields(ev[0])[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	released := tk.PhaseTime(v1alpha1.PhaseReleased).Time
	if off := time.Unix(0, int64(offAt*1e9)); !off.Before(released) {
		t.Fatalf("released at %s, before the BMC cut the power at %s", released, off)
	}
	if !tk.Status.RebootRequired || !strings.Contains(tk.Status.FenceOutput, "status read OFF back") {
		t.Fatalf("Takeover fence output %q, rebootRequired %v", tk.Status.FenceOutput, tk.Status.RebootRequired)
	}
	if strings.Contains(tk.Status.FenceOutput, lab.bmcs[old].Password) {
		t.Fatal("the BMC password is in the Takeover's status")
	}
	fenceTime := tk.PhaseTime(v1alpha1.PhaseFenced).Sub(tk.PhaseTime(v1alpha1.PhaseFencing).Time)
	timeline(t, "MySQL StatefulSet, IPMI fencing (fence_ipmilan, ipmi_sim), profile "+profile, t0, tk)
	t.Logf("fence output: %s", tk.Status.FenceOutput)
	t.Logf("RTO (cut-off to mysql-0 Ready on %s): %.1fs; fencing took %.1fs", p.Spec.NodeName, rto.Seconds(), fenceTime.Seconds())
	fmt.Printf("RESULT scenario=ipmi profile=%s strategy=OutOfServiceTaint rto_seconds=%.1f fence_seconds=%.2f\n", profile, rto.Seconds(), fenceTime.Seconds())
	e.breakdown("ipmi_"+profile, old, t0, tk, rto)
	o.finish(fmt.Sprintf("mysql-0 Ready on %s; rto_seconds=%.1f fence_seconds=%.2f", p.Spec.NodeName, rto.Seconds(), fenceTime.Seconds()))
	e.expectEvent(old, "Fenced")
	if !release.HasTaint(e.node(old)) {
		t.Fatalf("node %s does not carry the out-of-service taint", old)
	}
}

// The BMC does not answer: FenceReady turns False before any failure; when
// the node then fails, fencing fails with the reason, the Takeover shows
// Failed, and nothing is released.
func TestIPMIFencePathBroken(t *testing.T) {
	t.Parallel()
	requireIPMI(t)
	e := newEnv(t, bed.Options{Workers: 2})
	lab := e.startIPMILab("ipmi-e2e-broken")
	e.startController("liberator-a", lab.config("")+"retry: {initialBackoff: 2s, maxBackoff: 10s}\n")
	old := e.deployMySQL()
	e.fenceReady(old, corev1.ConditionTrue, time.Minute)
	_ = lab.bmcs[old].Stop() // the BMC stops answering
	c := e.fenceReady(old, corev1.ConditionFalse, time.Minute)
	if c.Reason != "FenceCheckFailed" || !strings.Contains(c.Message, "did not finish within") {
		t.Fatalf("FenceReady %+v", c)
	}
	e.expectEvent(old, "FenceNotReady")
	before, _ := e.pod("default", "mysql-0")

	if err := e.c.CutOff(old); err != nil {
		t.Fatal(err)
	}
	tk := e.takeoverIn(old, v1alpha1.PhaseFailed, 2*time.Minute)
	if tk.Status.Reason != "FenceFailed" || !strings.Contains(tk.Status.Message, "nothing is released") {
		t.Fatalf("Takeover %s: %s: %s", tk.Name, tk.Status.Reason, tk.Status.Message)
	}
	t.Logf("Takeover: %s", tk.Status.Message)
	// Retried by policy, and still nothing released.
	e.waitFor("a second fence attempt", time.Minute, func() (bool, error) {
		l := e.takeovers(old)
		return len(l) > 0 && l[len(l)-1].Status.FenceAttempts >= 2, nil
	})
	p, err := e.pod("default", "mysql-0")
	if err != nil || p.UID != before.UID || p.Spec.NodeName != old {
		t.Fatalf("mysql-0 moved although the node was never fenced: %v %v", p.Spec.NodeName, err)
	}
	if release.HasTaint(e.node(old)) {
		t.Fatal("the unfenced node got the out-of-service taint")
	}
	if tk := e.takeovers(old); tk[len(tk)-1].PhaseTime(v1alpha1.PhaseReleased) != nil {
		t.Fatal("the Takeover released an unfenced node")
	}
	e.expectEvent(old, "FenceFailed")
}
