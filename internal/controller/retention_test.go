package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
)

// pastTakeover is a Takeover of node created at created (from
// fixtureStart); closed, when set, is when it was closed (Recovered).
func pastTakeover(node string, created time.Duration, closed *time.Duration) *v1alpha1.Takeover {
	at := fixtureStart.Add(created)
	tk := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: takeoverName(node, at), CreationTimestamp: metav1.NewTime(at)},
		Spec:       v1alpha1.TakeoverSpec{NodeName: node, Strategy: v1alpha1.StrategyOutOfServiceTaint, FenceProvider: "wait"},
		Status: v1alpha1.TakeoverStatus{Phase: v1alpha1.PhaseFenced, Reason: "Fenced",
			Timeline: []v1alpha1.PhaseTransition{{Phase: v1alpha1.PhaseDetected, Time: metav1.NewMicroTime(at)}}},
	}
	if closed != nil {
		tk.Status.Phase, tk.Status.Reason = v1alpha1.PhaseRecovered, "NodeRecovered"
		tk.Status.Timeline = append(tk.Status.Timeline, v1alpha1.PhaseTransition{Phase: v1alpha1.PhaseRecovered, Time: metav1.NewMicroTime(fixtureStart.Add(*closed))})
	}
	return tk
}

func hours(h int) *time.Duration { d := time.Duration(h) * time.Hour; return &d }

// The names of the Takeovers on the API server, sorted.
func (f *fixture) takeoverNames() []string {
	f.t.Helper()
	var l v1alpha1.TakeoverList
	if err := f.client.List(f.ctx(), &l); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, tk := range l.Items {
		out = append(out, tk.Name)
	}
	slices.Sort(out)
	return out
}

func TestRetentionDeletesOldestClosed(t *testing.T) {
	type tko struct {
		node            string
		created, closed int // hours before fixtureStart; closed < 0: open
	}
	// w1: five closed, one open (the oldest, still open: never deleted);
	// w2: two closed; w3: one closed long ago.
	all := []tko{
		{"w1", -100, 1}, {"w1", -90, -89}, {"w1", -80, -79}, {"w1", -70, -10}, {"w1", -60, -59}, {"w1", -50, -49},
		{"w2", -40, -39}, {"w2", -30, -29},
		{"w3", -1000, -999},
	}
	name := func(x tko) string { return takeoverName(x.node, fixtureStart.Add(time.Duration(x.created)*time.Hour)) }
	for _, tc := range []struct {
		name string
		r    config.Retention
		// gone are the indexes in all deleted.
		gone []int
	}{
		{"within the limits", config.Retention{PerNode: 5, Total: 100}, nil},
		// w1's closed ones by closing time, newest first: -10 (created -70), -49, -59, -79, -89.
		{"per node", config.Retention{PerNode: 2, Total: 100}, []int{1, 2, 4}},
		{"total", config.Retention{PerNode: 5, Total: 3}, []int{1, 2, 4, 5, 8}},
		{"per node then total", config.Retention{PerNode: 1, Total: 2}, []int{1, 2, 4, 5, 6, 8}},
		{"max age", config.Retention{PerNode: 5, Total: 100, MaxAge: config.Duration{Duration: 60 * time.Hour}}, []int{1, 2, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.Retention = tc.r
			var want []string
			for i, x := range all {
				var closed *time.Duration
				if x.closed <= 0 {
					closed = hours(x.closed)
				}
				f.putTakeover(pastTakeover(x.node, time.Duration(x.created)*time.Hour, closed))
				if !slices.Contains(tc.gone, i) {
					want = append(want, name(x))
				}
			}
			slices.Sort(want)
			f.sync()
			f.c.prune(f.ctx())
			if got := f.takeoverNames(); !slices.Equal(got, want) {
				t.Errorf("kept %v\n want %v", got, want)
			}
			// A second pass on a cache that still holds the deleted ones
			// deletes nothing more and fails on nothing.
			f.c.prune(f.ctx())
			f.sync()
			f.c.prune(f.ctx())
			if got := f.takeoverNames(); !slices.Equal(got, want) {
				t.Errorf("after more passes kept %v\n want %v", got, want)
			}
		})
	}
}

// A Takeover is deleted only as the cache saw it: one that changed since
// (its resourceVersion differs) is left alone.
func TestRetentionPrecondition(t *testing.T) {
	f := newFixture(t)
	f.cfg.Retention = config.Retention{PerNode: 1, Total: 100}
	old, newer := pastTakeover("w1", -20*time.Hour, hours(-19)), pastTakeover("w1", -10*time.Hour, hours(-9))
	f.putTakeover(old)
	f.putTakeover(newer)
	f.sync()
	// Changed on the server after the cache saw it.
	live := &v1alpha1.Takeover{}
	if err := f.client.Get(f.ctx(), clientKey(old.Name), live); err != nil {
		t.Fatal(err)
	}
	live.Labels = map[string]string{"touched": "yes"}
	if err := f.client.Update(f.ctx(), live); err != nil {
		t.Fatal(err)
	}
	f.c.prune(f.ctx())
	if got := f.takeoverNames(); len(got) != 2 {
		t.Fatalf("a Takeover changed since the cache saw it was deleted: left %v", got)
	}
	f.sync()
	f.c.prune(f.ctx())
	if got := f.takeoverNames(); fmt.Sprint(got) != fmt.Sprint([]string{newer.Name}) {
		t.Fatalf("left %v, want %s", got, newer.Name)
	}
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
