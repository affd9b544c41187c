//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// TestPauseResume: liberator pause and resume, live, on the bed's real
// control plane, with the controller running under its ServiceAccount and
// config/rbac (its watch on the pause ConfigMap is allowed by name only).
// `liberator pause --reason upgrade` (bin/liberator, as the bed's
// cluster-admin) makes liberator_paused 1 and liberator status start with
// PAUSED; mysql-0's node is powered off and stays off well past
// unhealthyAfter plus the fence's safe time: the controller counts it
// unhealthy, opens no Takeover, fences nothing, mysql-0 stays where it was.
// `liberator resume` makes liberator_paused 0, and the takeover happens
// (WorkloadsReady, mysql-0 Ready on the other worker). The oracle ends it.
// A ServiceAccount bound to liberator-status-reader alone sees the pause in
// liberator status (get on that one ConfigMap), with no warning; the
// controller records Events LiberatorPaused and LiberatorResumed on the
// ConfigMap.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	cfg := fastConfig("")
	ctl := e.startController("liberator-a", cfg)
	e.waitLeader(ctl, time.Minute)
	old := e.deployMySQL()
	ctx := context.Background()
	r, err := e.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user := r.Status.UserInfo.Username

	_, _, err = e.cliRun("pause")
	if err == nil || !strings.Contains(err.Error(), "--reason is required") {
		t.Fatalf("pause without --reason: %v; want the usage error", err)
	}
	out, _, err := e.cliRun("pause", "--reason", "upgrade")
	if err != nil || !strings.HasPrefix(out, "liberator paused by "+user+" since ") || !strings.Contains(out, ": upgrade; no takeover is opened") {
		t.Fatalf("pause: %q, %v; want liberator paused by %s since ...: upgrade", out, err, user)
	}
	paused := time.Now()
	e.waitFor("liberator_paused 1", 30*time.Second, func() (bool, error) {
		v, err := metricValue(ctl, "liberator_paused")
		return v == 1, err
	})
	t.Logf("liberator_paused 1 %.2fs after liberator pause returned", time.Since(paused).Seconds())
	out, _, err = e.cliRun("pause", "--reason", "another")
	if err != nil || !strings.Contains(out, "liberator is already paused by "+user) || !strings.Contains(out, ": upgrade (liberator resume to end it)") {
		t.Fatalf("pause again: %q, %v; want the pause in force, kept", out, err)
	}
	out, _, err = e.cliRun("status")
	if first, _, _ := strings.Cut(out, "\n"); err != nil || !strings.HasPrefix(first, "PAUSED since ") || !strings.HasSuffix(first, " by "+user+": upgrade (liberator resume to end it)") {
		t.Fatalf("status while paused: first line %q (%v); want PAUSED since ... by %s: upgrade (liberator resume to end it)", first, err, user)
	}

	// liberator-status-reader alone reads the pause too (by its name).
	if _, err := e.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "pause-reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pause-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "liberator-status-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "pause-reader", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc, err := e.c.ServiceAccountKubeconfig(ctx, "default", "pause-reader")
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("liberator status as liberator-status-reader shows the pause", 30*time.Second, func() (bool, error) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(liberatorBinary(t, e.root), "--kubeconfig", kc, "status")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		first, _, _ := strings.Cut(out.String(), "\n")
		if err != nil || errOut.Len() != 0 || !strings.HasPrefix(first, "PAUSED since ") {
			return false, fmt.Errorf("exit %v, first line %q, stderr %q", err, first, errOut.String())
		}
		return true, nil
	})
	t.Logf("liberator status as liberator-status-reader alone: PAUSED line, no warning")

	o := newOracle(e, "pause_resume", e.fenceAttempts)
	e.controllerWatching(old)
	o.fail(old)
	before, err := e.pod("default", "mysql-0")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		t.Fatal(err)
	}
	// The scan still watches: the controller counts the node unhealthy.
	e.waitFor("liberator_unhealthy_nodes 1", time.Minute, func() (bool, error) {
		v, err := metricValue(ctl, "liberator_unhealthy_nodes")
		return v == 1, err
	})
	unhealthy := time.Since(t0)
	// Well past unhealthyAfter (10 s) plus the fence's safe time (5 s).
	time.Sleep(20 * time.Second)
	if l := e.takeovers(old); len(l) != 0 {
		t.Fatalf("Takeover opened while paused: %s", timeline(t, "paused", t0, l[len(l)-1]))
	}
	if p, err := e.pod("default", "mysql-0"); err != nil || p.UID != before.UID {
		t.Fatalf("mysql-0 moved while paused: %v, %v", p, err)
	}
	if n := e.node(old); release.HasLiberatorTaint(n) || release.HasTaint(n) {
		t.Fatalf("node %s tainted while paused: %v", old, n.Spec.Taints)
	}
	if !strings.Contains(ctl.logText(), "liberator paused by "+user+" since ") {
		t.Errorf("the controller's log does not say it is paused, by whom:\n%s", tail(ctl.logText(), 20))
	}
	t.Logf("paused: %s counted unhealthy %.1fs after the power-off; no Takeover, nothing fenced, mysql-0 in place %.1fs after it", old, unhealthy.Seconds(), time.Since(t0).Seconds())

	t1 := time.Now()
	out, _, err = e.cliRun("resume")
	if err != nil || !strings.HasPrefix(out, "liberator resumed: the pause by "+user+" since ") || !strings.Contains(out, "(upgrade) ended after ") {
		t.Fatalf("resume: %q, %v", out, err)
	}
	np := e.readyPod("default", "mysql-0", old, 2*time.Minute)
	ready := time.Since(t1)
	defer func() {
		o.finish(fmt.Sprintf("mysql-0 Ready on %s %.1fs after liberator resume", np.Spec.NodeName, ready.Seconds()))
	}()
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhaseFencing, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	if v, err := metricValue(ctl, "liberator_paused"); err != nil || v != 0 {
		t.Errorf("liberator_paused %v (%v) after resume, want 0", v, err)
	}
	// The controller recorded the pause's beginning and end on its ConfigMap.
	e.waitFor("events LiberatorPaused and LiberatorResumed on tkr-system/liberator-pause", 30*time.Second, func() (bool, error) {
		l, err := e.kube.CoreV1().Events("tkr-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=liberator-pause"})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, ev := range l.Items {
			seen[ev.Reason] = true
		}
		return seen["LiberatorPaused"] && seen["LiberatorResumed"], fmt.Errorf("events %v", seen)
	})
	out, _, _ = e.cliRun("resume")
	if out != "liberator is not paused\n" {
		t.Errorf("resume again: %q, want liberator is not paused", out)
	}
	timeline(t, "resumed", t1, tk)
	t.Logf("liberator resume to mysql-0 Ready on %s: %.1fs", np.Spec.NodeName, ready.Seconds())
}
