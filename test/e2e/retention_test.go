//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// Closed Takeovers beyond retention are deleted by the controller on the
// real API server, the oldest first; an open one is never deleted. A node
// goes silent for a whole window three times and comes back each time
// before its fence (the wait provider's safe time of 60 s) completes: three
// incidents closed as HeartbeatResumed. With retention.perNode 1 only the
// newest stays. The conditions are checked as the API server stored them.
func TestRetentionOnAPIServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 3, LeaseDurationSeconds: fastLease})
	ctl := e.startController("liberator-a", `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: 10s
healthyDelay: 5s
fencing:
  classes:
  - name: lab
    provider: wait
    wait: {safeTime: 60s}
retention: {perNode: 1, total: 10}
`)
	e.waitLeader(ctl, time.Minute)
	node := ""
	for _, n := range e.c.Nodes() {
		if n != bed.ControlPlaneNode && node == "" {
			node = n
		}
	}

	// open powers the node off until its new Takeover is open (fencing:
	// the safe time runs); it returns the Takeover's name.
	open := func(known []string) string {
		t.Helper()
		if err := e.c.PowerOff(node); err != nil {
			t.Fatal(err)
		}
		name := ""
		e.waitFor("a new open Takeover of "+node, time.Minute, func() (bool, error) {
			for _, tk := range e.takeovers(node) {
				if !slices.Contains(known, tk.Name) && tk.Status.Phase == v1alpha1.PhaseFencing {
					name = tk.Name
					return true, nil
				}
			}
			return false, nil
		})
		return name
	}
	var names []string
	for i := range 3 {
		name := open(names)
		names = append(names, name)
		if err := e.c.PowerOn(context.Background(), node); err != nil {
			t.Fatal(err)
		}
		e.waitFor(name+" closed", time.Minute, func() (bool, error) {
			for _, tk := range e.takeovers(node) {
				if tk.Name == name && tk.Status.Phase.Closed() {
					return true, nil
				}
			}
			return false, nil
		})
		t.Logf("incident %d: %s opened and closed before its fence", i+1, name)
	}
	// Only the newest closed one stays.
	e.waitFor("retention to keep only "+names[2], time.Minute, func() (bool, error) {
		var left []string
		for _, tk := range e.takeovers(node) {
			left = append(left, tk.Name)
		}
		if !slices.Equal(left, names[2:]) {
			return false, fmt.Errorf("left %v", left)
		}
		return true, nil
	})
	closed := e.takeovers(node)[0]
	checkConditions(t, &closed, "False/HeartbeatResumed", "False/HeartbeatResumed", "False/HeartbeatResumed")

	// An open incident beside the one closed Takeover kept: neither goes.
	name := open(names)
	tk := e.takeoverIn(node, v1alpha1.PhaseFencing, time.Minute)
	checkConditions(t, &tk, "True/FenceStarted", "Unknown/InProgress", "False/FenceStarted")
	time.Sleep(5 * time.Second) // the close of another node's incident, or a pass, would have run by now
	var left []string
	for _, tk := range e.takeovers(node) {
		left = append(left, tk.Name)
	}
	if want := []string{names[2], name}; !slices.Equal(left, want) {
		t.Fatalf("Takeovers %v, want the closed %s and the open %s", left, names[2], name)
	}
	if err := e.c.PowerOn(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	e.waitFor("retention to keep only "+name, time.Minute, func() (bool, error) {
		l := e.takeovers(node)
		return len(l) == 1 && l[0].Name == name && l[0].Status.Phase.Closed(), nil
	})
}

// checkConditions fails unless the Takeover's Progressing, Succeeded and
// Degraded conditions are the given "Status/Reason".
func checkConditions(t *testing.T, tk *v1alpha1.Takeover, progressing, succeeded, degraded string) {
	t.Helper()
	for typ, want := range map[string]string{"Progressing": progressing, "Succeeded": succeeded, "Degraded": degraded} {
		c := meta.FindStatusCondition(tk.Status.Conditions, typ)
		got := "-"
		if c != nil {
			got = string(c.Status) + "/" + c.Reason
		}
		if got != want {
			t.Errorf("%s: condition %s is %s, want %s (conditions %+v)", tk.Name, typ, got, want, tk.Status.Conditions)
		}
	}
}
