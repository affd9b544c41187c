//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// Scenario 9: the replicated MySQL StatefulSet (3 replicas). The node of
// mysql-2 dies; only mysql-2 moves, the others keep running.
func TestReplicatedMySQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 4, LeaseDurationSeconds: fastLease})
	e.startController("liberator-a", fastConfig(""))
	ctx := context.Background()
	e.ensureStorage()
	// The example claims from the default StorageClass.
	patch := []byte(`{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}`)
	if _, err := e.kube.StorageV1().StorageClasses().Patch(ctx, bed.StorageClass, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.c.CreateVolume(ctx, fmt.Sprintf("pv-data-mysql-%d", i), "default", fmt.Sprintf("data-mysql-%d", i), "10Gi"); err != nil {
			t.Fatal(err)
		}
	}
	e.apply("examples/mysql-replicated")
	pods := map[string]*corev1.Pod{}
	for i := range 3 {
		name := fmt.Sprintf("mysql-%d", i)
		pods[name] = e.readyPod("default", name, "", 3*time.Minute)
	}
	victim := pods["mysql-2"].Spec.NodeName
	for name, p := range pods {
		if name != "mysql-2" && p.Spec.NodeName == victim {
			t.Fatalf("%s shares node %s with mysql-2 despite the example's anti-affinity", name, victim)
		}
	}
	o := newOracle(e, "replicated_MySQL", e.fenceAttempts)
	e.controllerWatching(victim)
	o.fail(victim)
	t0 := time.Now()
	if err := e.c.PowerOff(victim); err != nil {
		t.Fatal(err)
	}
	p := e.readyPod("default", "mysql-2", victim, 2*time.Minute)
	ready := time.Since(t0)
	defer func() { o.finish(fmt.Sprintf("mysql-2 Ready on %s after %.1fs", p.Spec.NodeName, ready.Seconds())) }()
	t.Logf("mysql-2 Ready on %s %.1fs after its node %s lost power", p.Spec.NodeName, time.Since(t0).Seconds(), victim)
	for _, name := range []string{"mysql-0", "mysql-1"} {
		q, err := e.pod("default", name)
		if err != nil || q.UID != pods[name].UID || q.Spec.NodeName != pods[name].Spec.NodeName || !podReady(q) {
			t.Fatalf("%s was disturbed by the takeover of %s: %v", name, victim, err)
		}
	}
	tk := e.takeoverIn(victim, v1alpha1.PhaseWorkloadsReady, time.Minute)
	if len(tk.Status.MovedPods) != 1 || tk.Status.MovedPods[0].Name != "mysql-2" {
		t.Fatalf("moved pods %+v, want only mysql-2", tk.Status.MovedPods)
	}
	timeline(t, "scenario 9: replicated MySQL, mysql-2's node lost", t0, tk)
	e.breakdown("9_replicated_MySQL", victim, t0, tk, ready)
}

// Scenario 10: a Deployment with a ReadWriteOnce iSCSI volume (the seed's
// active/standby MySQL). Kubernetes alone evicts it after 5 minutes and
// leaves the old pod Terminating on the dead node; liberator fences the
// node and the replacement runs in seconds.
func TestRWODeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	e.startController("liberator-a", fastConfig(""))
	e.apply("examples/iscsi-deployment")
	ctx := context.Background()
	var first corev1.Pod
	e.waitFor("the iSCSI MySQL Deployment's pod Ready", 2*time.Minute, func() (bool, error) {
		l, err := e.kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=mysql-server"})
		if err != nil || len(l.Items) != 1 {
			return false, err
		}
		first = l.Items[0]
		return podReady(&first), nil
	})
	old := first.Spec.NodeName
	o := newOracle(e, "scenario=10_iSCSI_Deployment", e.fenceAttempts)
	e.controllerWatching(old)
	o.fail(old)
	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		t.Fatal(err)
	}
	var repl corev1.Pod
	e.waitFor("a replacement pod Ready on another node", 2*time.Minute, func() (bool, error) {
		l, err := e.kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=mysql-server"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.UID != first.UID && p.Spec.NodeName != "" && p.Spec.NodeName != old && podReady(&p) {
				repl = p
				return true, nil
			}
		}
		return false, nil
	})
	rto := time.Since(t0)
	if _, err := e.pod("default", first.Name); err == nil {
		t.Fatalf("the old pod %s still exists next to its replacement", first.Name)
	}
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	timeline(t, "scenario 10: iSCSI Deployment", t0, tk)
	t.Logf("RTO (power-off to %s Ready on %s): %.1fs; Kubernetes alone takes 5 min to evict it", repl.Name, repl.Spec.NodeName, rto.Seconds())
	fmt.Printf("RESULT scenario=10 profile=fast rto_seconds=%.1f\n", rto.Seconds())
	e.breakdown("10_RWO_Deployment", old, t0, tk, rto)
	o.finish(fmt.Sprintf("%s Ready on %s; rto_seconds=%.1f", repl.Name, repl.Spec.NodeName, rto.Seconds()))
}
