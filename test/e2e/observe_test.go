//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// kubectl runs the pinned kubectl (hack/tools/build.sh) against the bed as
// its admin. Without that binary the test fails under CI and is skipped
// elsewhere.
func (e *env) kubectl(args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := e.Kubectl(ctx, args...)
	if errors.Is(err, kit.ErrNoKubectl) {
		if os.Getenv("CI") == "true" {
			e.t.Fatalf("CI=true: %v", err)
		}
		e.t.Skipf("%v; run hack/tools/build.sh", err)
	}
	return out, err
}

// eventually runs kubectl until its output holds every one of want (the
// events reach the API server a moment after the step that records them).
func (e *env) eventually(timeout time.Duration, want []string, args ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := e.kubectl(args...)
		var missing []string
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = append(missing, w)
			}
		}
		if err == nil && len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("kubectl %s: missing %q after %s (error %v); output:\n%s", strings.Join(args, " "), missing, timeout, err, out)
		}
		time.Sleep(time.Second)
	}
}

// What the person on call types, with the real kubectl, during and after a
// takeover on the bed: `kubectl wait` on the Takeover's Succeeded condition
// (timing out while it is open, returning once it succeeded), `kubectl get
// tko` with the provider, the pods moved and the downtime, and the steps'
// events in `kubectl describe` of the node, the Takeover and the
// StatefulSet. The controller logs JSON lines (--log-format json).
func TestObserveTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	if _, err := e.kubectl("version", "--client"); err != nil { // fails or skips without the binary
		t.Fatal(err)
	}
	ctl := e.startController("liberator-a", fastConfig(""), "--log-format", "json")

	old := e.deployMySQL()
	o := newOracle(e, "observe", e.fenceAttempts)
	e.controllerWatching(old)
	o.fail(old)
	t0 := time.Now()
	if err := e.c.PowerOff(old); err != nil {
		t.Fatal(err)
	}

	// Open, not fenced yet (the wait provider's safe time is 5 s from
	// detection): a short wait times out with a non-zero exit.
	open := e.takeoverIn(old, v1alpha1.PhaseDetected, time.Minute)
	ref := "takeover/" + open.Name
	out, err := e.kubectl("wait", "--for=condition=Succeeded", ref, "--timeout=1s")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("kubectl wait on the open Takeover %s: %v (output %q), want a time-out with a non-zero exit", open.Name, err, out)
	}
	if tk := e.takeovers(old); tk[len(tk)-1].PhaseTime(v1alpha1.PhaseWorkloadsReady) != nil {
		t.Fatalf("the Takeover succeeded within the short wait: %s", timeline(t, "observe", t0, tk[len(tk)-1]))
	}

	// The wait returns once the workloads are Ready elsewhere.
	out, err = e.kubectl("wait", "--for=condition=Succeeded", ref, "--timeout=3m")
	if err != nil || !strings.Contains(out, "condition met") {
		t.Fatalf("kubectl wait --for=condition=Succeeded %s: %v (output %q)", ref, err, out)
	}
	waited := time.Since(t0)
	p := e.readyPod("default", "mysql-0", old, 2*time.Minute)
	defer func() { o.finish(fmt.Sprintf("mysql-0 Ready on %s; kubectl checks passed", p.Spec.NodeName)) }()
	tk := e.takeoverIn(old, v1alpha1.PhaseWorkloadsReady, time.Minute)
	timeline(t, "observe", t0, tk)
	t.Logf("kubectl wait returned %.1fs after the power-off", waited.Seconds())
	if tk.Status.Downtime == nil || tk.Status.Downtime.Total == nil {
		t.Fatalf("Takeover %s has no downtime: %+v", tk.Name, tk.Status)
	}

	// kubectl get tko: the row of this Takeover, read by the header.
	out, err = e.kubectl("get", "tko")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get tko:\n%s", out)
	row := tableColumns(t, out, tk.Name)
	want := map[string]string{"NODE": old, "PHASE": string(v1alpha1.PhaseWorkloadsReady), "PROVIDER": tk.Spec.FenceProvider,
		"PODS": "1", "DOWNTIME": tk.Status.Downtime.Total.Duration.String()}
	for col, v := range want {
		if row[col] != v {
			t.Errorf("kubectl get tko: %s = %q, want %q\n%s", col, row[col], v, out)
		}
	}

	// The steps' events where people look.
	steps := []string{"TakeoverDetected", "Fencing", "Fenced", "Released", "WorkloadsReady"}
	nodeOut := e.eventually(30*time.Second, append([]string{"Events:"}, steps...), "describe", "node", old)
	tkOut := e.eventually(30*time.Second, append([]string{"Events:"}, steps...), "describe", "takeover", tk.Name)
	stsOut := e.eventually(30*time.Second, []string{
		"PodReleased", fmt.Sprintf("pod mysql-0 released from failed node %s (Takeover %s)", old, tk.Name),
		"PodReady", fmt.Sprintf("replacement mysql-0 Ready on node %s", p.Spec.NodeName),
	}, "-n", "default", "describe", "statefulset", "mysql")
	for _, d := range []struct{ what, out string }{{"node " + old, nodeOut}, {"takeover " + tk.Name, tkOut}, {"statefulset mysql", stsOut}} {
		t.Logf("kubectl describe %s, events:\n%s", d.what, eventsSection(d.out))
	}

	// Every line the controller wrote is one JSON object with a message;
	// the fence is among them with its node.
	fenced := false
	for _, l := range strings.Split(strings.TrimSpace(ctl.logText()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("--log-format json: the controller wrote a line that is not JSON: %q", l)
		}
		if _, ok := m["msg"].(string); !ok {
			t.Fatalf("--log-format json: a line without msg: %q", l)
		}
		fenced = fenced || (m["msg"] == "node fenced" && m["node"] == old && m["takeover"] == tk.Name)
	}
	if !fenced {
		t.Errorf("no JSON line {msg: node fenced, node: %s, takeover: %s} in the controller's log", old, tk.Name)
	}
}

// tableColumns returns the row of kubectl's table whose first column is name,
// keyed by the header's column names.
func tableColumns(t *testing.T, table, name string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == len(header) && f[0] == name {
			row := map[string]string{}
			for i, h := range header {
				row[h] = f[i]
			}
			return row
		}
	}
	t.Fatalf("no row %s with the header's %d columns in:\n%s", name, len(header), table)
	return nil
}

// eventsSection is the Events part of kubectl describe's output.
func eventsSection(out string) string {
	if i := strings.LastIndex(out, "Events:"); i >= 0 {
		return out[i:]
	}
	return out
}
