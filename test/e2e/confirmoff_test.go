//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/cli"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// confirmOffConfig is the fast profile with one fence class of provider
// none: no automatic fence, so a failed node waits for confirm-off.
const confirmOffConfig = `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: 10s
healthyDelay: 5s
fencing:
  classes:
  - name: manual
    provider: none
`

// confirmOffRun runs bin/liberator confirm-off as the bed's cluster-admin
// and returns its exit code, stdout and stderr.
func (e *env) confirmOffRun(node string, args ...string) (int, string, string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append([]string{"--kubeconfig", e.c.Kubeconfig(), "confirm-off", node}, args...)
	cmd := exec.CommandContext(ctx, liberatorBinary(e.t, e.root), all...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("liberator confirm-off: %v", err)
	}
	e.t.Logf("$ liberator %s\n%s%s(exit %d)", strings.Join(all[2:], " "), out.String(), errOut.String(), code)
	return code, out.String(), errOut.String()
}

// TestConfirmOff: an operator's confirm-off on the bed's real control
// plane. A live node (no incident, its Lease renewing) is refused with
// exit code 1 and nothing is written. mysql-0's node, of a provider none
// class, is powered off: its Takeover waits in Paused/AwaitingConfirmOff
// and nothing is released; `liberator confirm-off NODE --reason ...` is
// taken (Fenced/ConfirmedOff, by the bed's user as the API server names
// it), the node is released and mysql-0 is Ready on the other worker. A
// statement written with kubectl's rights in someone else's name is
// refused by the API server (the admission policy in config/rbac).
func TestConfirmOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	ctl := e.startController("liberator-a", confirmOffConfig)
	e.waitLeader(ctl, time.Minute)
	old := e.deployMySQL()
	other := ""
	for _, n := range e.c.Nodes() {
		if n != old && n != bed.ControlPlaneNode {
			other = n
		}
	}
	ctx := context.Background()
	r, err := e.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user := r.Status.UserInfo.Username

	// A live node: refused, nothing written.
	code, _, errOut := e.confirmOffRun(other, "--reason", "pulled the plug")
	want := fmt.Sprintf("liberator has not found %s failed: no open takeover (last heartbeat ", other)
	if code != cli.ExitGoalNotMet || !strings.Contains(errOut, want) {
		t.Fatalf("confirm-off of the live node %s: exit %d, stderr %q; want exit %d and %q", other, code, errOut, cli.ExitGoalNotMet, want)
	}
	if l := e.takeovers(other); len(l) != 0 {
		t.Fatalf("confirm-off of a live node left Takeovers: %v", l)
	}
	if n := e.node(other); release.HasLiberatorTaint(n) || release.HasTaint(n) {
		t.Fatalf("live node %s tainted: %v", other, n.Spec.Taints)
	}

	o := newOracle(e, "confirm-off_none_class", e.fenceAttempts)
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
	var tk v1alpha1.Takeover
	e.waitFor("Takeover of "+old+" Paused/AwaitingConfirmOff", time.Minute, func() (bool, error) {
		l := e.takeovers(old)
		if len(l) == 0 {
			return false, nil
		}
		tk = l[len(l)-1]
		return tk.Status.Phase == v1alpha1.PhasePaused && tk.Status.Reason == "AwaitingConfirmOff", fmt.Errorf("%s/%s", tk.Status.Phase, tk.Status.Reason)
	})
	paused := time.Since(t0)
	if !strings.Contains(tk.Status.Message, "liberator confirm-off "+old) {
		t.Errorf("the Paused message does not tell the command: %q", tk.Status.Message)
	}
	// Nothing is released while nobody has confirmed: a window more.
	time.Sleep(10 * time.Second)
	l := e.takeovers(old)
	tk = l[len(l)-1]
	p, err := e.pod("default", "mysql-0")
	if err != nil || p.UID != before.UID {
		t.Fatalf("mysql-0 released without a confirmation: %v, %v", p, err)
	}
	if n := e.node(old); release.HasLiberatorTaint(n) || release.HasTaint(n) || tk.PhaseTime(v1alpha1.PhaseFenced) != nil {
		t.Fatalf("released without a confirmation: taints %v, timeline %s", n.Spec.Taints, timeline(t, "waiting", t0, tk))
	}
	t.Logf("Paused/AwaitingConfirmOff %.1fs after the power-off; still Paused, mysql-0 still on %s, %.1fs after it", paused.Seconds(), old, time.Since(t0).Seconds())

	// A statement in someone else's name is refused by the API server
	// (the ValidatingAdmissionPolicy liberator-confirmed-off of config/rbac).
	forged := tk.DeepCopy()
	forged.Spec.ConfirmedOff = &v1alpha1.ConfirmedOff{By: "someone-else", Time: metav1.Now(), Reason: "forged", Heartbeat: tk.DetectedHeartbeat()}
	if err := e.tk.Update(ctx, forged); err == nil || !strings.Contains(err.Error(), "spec.confirmedOff.by must name the user who writes it ("+user+")") {
		t.Fatalf("a confirmedOff naming someone-else, written by %s: %v; want it refused by the admission policy", user, err)
	}

	t1 := time.Now()
	code, out, errOut := e.confirmOffRun(old, "--reason", "pulled the plug")
	if code != cli.ExitOK || !strings.Contains(out, "confirmed off by "+user) {
		t.Fatalf("confirm-off %s: exit %d, stdout %q, stderr %q; want 0 and confirmed off by %s", old, code, out, errOut, user)
	}
	np := e.readyPod("default", "mysql-0", old, 2*time.Minute)
	ready := time.Since(t1)
	defer func() {
		o.finish(fmt.Sprintf("mysql-0 Ready on %s %.1fs after confirm-off", np.Spec.NodeName, ready.Seconds()))
	}()
	tk = e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	checkOrder(t, tk, v1alpha1.PhaseDetected, v1alpha1.PhasePaused, v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady)
	co := tk.Spec.ConfirmedOff
	if co == nil || co.By != user || co.Reason != "pulled the plug" {
		t.Fatalf("spec.confirmedOff %+v, want by %s and the reason", co, user)
	}
	fenced := ""
	for _, en := range tk.Status.Timeline {
		if en.Phase == v1alpha1.PhaseFenced {
			fenced = en.Reason + ": " + en.Message
		}
	}
	if !strings.HasPrefix(fenced, "ConfirmedOff: confirmed off by "+user+" at ") || !strings.HasSuffix(fenced, ": pulled the plug") {
		t.Fatalf("Fenced entry %q, want ConfirmedOff: confirmed off by %s at ...: pulled the plug", fenced, user)
	}
	if tk.Status.FenceAttempts != 0 || !tk.Status.RebootRequired {
		t.Fatalf("fenceAttempts %d, rebootRequired %v; want 0 (no fence ran) and true", tk.Status.FenceAttempts, tk.Status.RebootRequired)
	}
	if !release.HasTaint(e.node(old)) {
		t.Fatalf("node %s has no out-of-service taint after release", old)
	}
	timeline(t, "confirm-off", t0, tk)
	t.Logf("confirm-off to mysql-0 Ready on %s: %.1fs", np.Spec.NodeName, ready.Seconds())

	// Said again, on the incident already fenced: nothing to do, exit 0.
	code, out, _ = e.confirmOffRun(old, "--reason", "pulled the plug")
	if code != cli.ExitOK || !strings.Contains(out, "nothing to confirm") {
		t.Fatalf("confirm-off on a fenced incident: exit %d, %q; want 0 and nothing to confirm", code, out)
	}
}
