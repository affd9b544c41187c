//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// labConfig is the controller configuration of the test bed: the shipped
// defaults plus one fence class. The bed's nodes have no BMC, so they are
// fenced with the wait provider (a safe time standing for a watchdog's
// timeout). extra is appended as more top-level YAML.
func labConfig(extra string) string {
	return `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
fencing:
  classes:
  - name: lab
    provider: wait
    wait: {safeTime: 5s}
` + extra
}

// fastProfile is the documented fast profile: kubelet Leases of 10 s
// (renewed every 2.5 s) and unhealthyAfter 10 s.
const fastLease = 10

func fastConfig(extra string) string {
	return labConfig("unhealthyAfter: 10s\nhealthyDelay: 5s\n" + extra)
}

// deployMySQL applies the seed's single MySQL StatefulSet from examples/ and
// returns the node mysql-0 runs on.
func (e *env) deployMySQL() string {
	e.t.Helper()
	e.ensureStorage()
	e.apply("examples/mysql-statefulset")
	p := e.readyPod("default", "mysql-0", "", 2*time.Minute)
	e.waitFor("VolumeAttachment of pv-mysql-0 attached on "+p.Spec.NodeName, time.Minute, func() (bool, error) {
		va := e.attachment("pv-mysql-0", p.Spec.NodeName)
		return va != nil && va.Status.Attached, nil
	})
	return p.Spec.NodeName
}

func (e *env) ensureStorage() {
	e.t.Helper()
	if err := e.c.EnsureStorage(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// attachment returns the VolumeAttachment of the PV on the node, or nil.
func (e *env) attachment(pv, node string) *storagev1.VolumeAttachment {
	l, err := e.kube.StorageV1().VolumeAttachments().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil
	}
	for i := range l.Items {
		va := &l.Items[i]
		if va.Spec.NodeName == node && va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == pv {
			return va
		}
	}
	return nil
}

func (e *env) node(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

// checkOrder asserts the Takeover went through phases in order, and that
// nothing was released before fencing succeeded.
func checkOrder(t *testing.T, tk v1alpha1.Takeover, phases ...v1alpha1.Phase) {
	t.Helper()
	var last time.Time
	for _, p := range phases {
		pt := tk.PhaseTime(p)
		if pt == nil {
			t.Fatalf("Takeover %s never reached %s; timeline %+v", tk.Name, p, tk.Status.Timeline)
		}
		if pt.Time.Before(last) {
			t.Fatalf("Takeover %s reached %s before the phase ahead of it", tk.Name, p)
		}
		last = pt.Time
	}
	if rel, f := tk.PhaseTime(v1alpha1.PhaseReleased), tk.PhaseTime(v1alpha1.PhaseFenced); rel != nil && (f == nil || rel.Before(f)) {
		t.Fatalf("Takeover %s released before it was fenced", tk.Name)
	}
}

// Scenario 1 and 3: the seed's MySQL StatefulSet, default settings. The node
// of mysql-0 loses power; mysql-0 must be Running and Ready on another node,
// bound to the same claim, its old VolumeAttachment gone. Then the node
// comes back: the taint goes, the node is schedulable, the Takeover closes.
func TestMySQLFailoverDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2})
	e.startController("liberator-a", labConfig(""))
	old := e.deployMySQL()
	before, _ := e.pod("default", "mysql-0")
	t.Logf("mysql-0 runs on %s; powering %s off", old, old)
	o := newOracle(e, "scenario=1_defaults", e.fenceAttempts)
	e.controllerWatching(old)
	o.fail(old)

	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		t.Fatal(err)
	}
	p := e.readyPod("default", "mysql-0", old, 3*time.Minute)
	rto := time.Since(t0)
	if p.UID == before.UID {
		t.Fatal("mysql-0 was not recreated")
	}
	if e.c.PoweredOn(old) {
		t.Fatal("the old node is on again: the bed did not keep it off")
	}
	claim := ""
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != "pvc-mysql-0" {
		t.Fatalf("mysql-0 uses claim %q, want pvc-mysql-0", claim)
	}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), claim, metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName != "pv-mysql-0" || pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim %s: %+v, %v; want Bound to pv-mysql-0", claim, pvc.Status, err)
	}
	if va := e.attachment("pv-mysql-0", old); va != nil {
		t.Fatalf("the old VolumeAttachment %s on %s is still there", va.Name, old)
	}
	e.waitFor("VolumeAttachment of pv-mysql-0 on "+p.Spec.NodeName, time.Minute, func() (bool, error) {
		va := e.attachment("pv-mysql-0", p.Spec.NodeName)
		return va != nil && va.Status.Attached, nil
	})
	if !release.HasTaint(e.node(old)) {
		t.Fatalf("node %s does not carry the out-of-service taint", old)
	}
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	if len(tk.Status.MovedPods) != 1 || tk.Status.MovedPods[0].Name != "mysql-0" || tk.Status.MovedPods[0].ReadyTime == nil {
		t.Fatalf("moved pods = %+v, want mysql-0 with a Ready time", tk.Status.MovedPods)
	}
	timeline(t, "scenario 1: MySQL StatefulSet, defaults", t0, tk)
	t.Logf("RTO (power-off to mysql-0 Ready on %s): %.1fs", p.Spec.NodeName, rto.Seconds())
	fmt.Printf("RESULT scenario=1 profile=default strategy=OutOfServiceTaint rto_seconds=%.1f\n", rto.Seconds())
	e.breakdown("1_defaults", old, t0, tk, rto)
	o.finish(fmt.Sprintf("mysql-0 Ready on %s; rto_seconds=%.1f", p.Spec.NodeName, rto.Seconds()))

	// Scenario 3: the node comes back with a new bootID.
	t1 := time.Now()
	if err := e.c.PowerOn(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	tk = e.takeoverIn(old, v1alpha1.PhaseRecovered, 2*time.Minute)
	n := e.node(old)
	if release.HasTaint(n) || n.Spec.Unschedulable {
		t.Fatalf("node %s after recovery: taints %v, unschedulable %v", old, n.Spec.Taints, n.Spec.Unschedulable)
	}
	if tk.Status.Reason != "NodeRecovered" {
		t.Fatalf("Takeover closed with reason %s, want NodeRecovered", tk.Status.Reason)
	}
	t.Logf("scenario 3: node %s recovered %.1fs after power-on (healthyDelay 30s)", old, time.Since(t1).Seconds())
	e.expectEvent(old, "Released")
	e.expectEvent(old, "Recovered")
}

// expectEvent waits for an event with the reason about the object name.
func (e *env) expectEvent(name, reason string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("event %s about %s", reason, name), 30*time.Second, func() (bool, error) {
		l, err := e.kube.CoreV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range l.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == reason && strings.Contains(ev.Source.Component, "liberator") {
				return true, nil
			}
		}
		return false, nil
	})
}
