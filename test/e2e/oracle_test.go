//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// oracle is the one verdict of every fault scenario: each simulated BMC
// counts the power-off requests it received, a node the scenario did not
// fail must end with none, and no pod's replacement may be Running while
// the old copy still runs (judged on the bed's own record of when each node
// was powered off, cut off or on).
type oracle struct {
	t        *testing.T
	c        *bed.Cluster
	scenario string
	start    time.Time
	// powerOffs returns, per worker, the power-off requests its BMC got.
	powerOffs func() map[string]int
	pods      *podRecorder

	mu     sync.Mutex
	failed map[string]bool
	done   bool
}

func newOracle(e *env, scenario string, powerOffs func() map[string]int) *oracle {
	o := &oracle{t: e.t, c: e.c, scenario: scenario, start: time.Now(), powerOffs: powerOffs, failed: map[string]bool{}}
	o.pods = recordPods(e)
	e.t.Cleanup(func() {
		o.mu.Lock()
		done := o.done
		o.mu.Unlock()
		if !done {
			o.result("aborted: the scenario failed before its end")
		}
	})
	return o
}

// fail notes that the scenario itself failed the node (cut it off, powered
// it off, or its kubelet stopped): a power-off of it is no wrong takeover.
func (o *oracle) fail(node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed[node] = true
}

// finish prints the scenario's RESULT line and fails the test when a node
// the scenario did not fail was powered off, or two copies of a pod ran at
// once.
func (o *oracle) finish(outcome string) {
	o.t.Helper()
	healthy, overlaps := o.result(outcome)
	if healthy > 0 {
		o.t.Errorf("%d node(s) the scenario did not fail were powered off", healthy)
	}
	if len(overlaps) > 0 {
		o.t.Errorf("a replacement ran while the old copy still ran: %s", strings.Join(overlaps, "; "))
	}
	if lost := o.replacementsDeleted(); len(lost) > 0 {
		o.t.Errorf("a replacement was deleted by the cleanup of the old pod: %s", strings.Join(lost, "; "))
	}
}

func (o *oracle) result(outcome string) (int, []string) {
	o.mu.Lock()
	o.done = true
	failed := maps.Clone(o.failed)
	o.mu.Unlock()
	counts := o.powerOffs()
	healthy := 0
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", n, counts[n]))
		if counts[n] > 0 && !failed[n] {
			healthy++
		}
	}
	overlaps := o.overlaps()
	ov := "none"
	if len(overlaps) > 0 {
		ov = strings.Join(overlaps, ";")
	}
	line := fmt.Sprintf("RESULT %s powerOffs{%s} healthyFenced=%d overlap=%s outcome=%s seconds=%.0f",
		o.scenario, strings.Join(parts, ","), healthy, strings.ReplaceAll(ov, " ", "_"), strings.ReplaceAll(outcome, " ", "_"), time.Since(o.start).Seconds())
	fmt.Println(line)
	o.t.Log(line)
	return healthy, overlaps
}

// overlaps finds pods of the same name (a StatefulSet's identity) whose new
// copy was Running on one node while the old copy still ran on another.
func (o *oracle) overlaps() []string {
	recs := o.pods.snapshot()
	byName := map[string][]podRecord{}
	for _, r := range recs {
		if !r.running.IsZero() && r.node != "" {
			byName[r.ns+"/"+r.name] = append(byName[r.ns+"/"+r.name], r)
		}
	}
	var out []string
	for id, copies := range byName {
		for _, old := range copies {
			for _, cur := range copies {
				if old.uid == cur.uid || old.node == cur.node || !old.running.Before(cur.running) {
					continue
				}
				hist := o.c.History(old.node)
				end := cur.deleted
				if end.IsZero() {
					end = time.Now()
				}
				points := []time.Time{cur.running}
				for _, tr := range hist {
					if tr.Time.After(cur.running) && tr.Time.Before(end) {
						points = append(points, tr.Time)
					}
				}
				for _, at := range points {
					if oldRuns(old, hist, at) {
						out = append(out, fmt.Sprintf("%s: the copy on %s (uid %s) ran at T+%.1fs while the one on %s (uid %s) was Running",
							id, old.node, short(old.uid), at.Sub(o.start).Seconds(), cur.node, short(cur.uid)))
						break
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// oldRuns reports whether the pod still ran on its node at the instant at:
// a cut-off node keeps running what it ran (deleting the object does not
// reach it) until it is powered off or reset by its watchdog; a node that
// is on runs the pod while its object exists; a node that is off or reset
// runs nothing.
func oldRuns(p podRecord, hist []bed.Transition, at time.Time) bool {
	state, since := "", time.Time{}
	offSinceStart := false
	for _, tr := range hist {
		if tr.Time.After(at) {
			break
		}
		state, since = tr.State, tr.Time
		if tr.Off() && tr.Time.After(p.running) {
			offSinceStart = true
		}
	}
	deletedBy := func(t time.Time) bool { return !p.deleted.IsZero() && !p.deleted.After(t) }
	switch state {
	case "cut off":
		// It kept running from the cut unless it was gone before, or the
		// node was powered off since it started.
		return !offSinceStart && !deletedBy(since)
	case "on":
		return !deletedBy(at)
	}
	return false
}

func short(uid string) string {
	if len(uid) > 8 {
		return uid[:8]
	}
	return uid
}

// podRecord is what the recorder saw of one pod (one UID), on this
// process's clock.
type podRecord struct {
	ns, name, uid, node string
	running, deleted    time.Time
	// taintEvicted: Kubernetes' taint-eviction controller marked this pod
	// (condition DisruptionTarget, reason DeletionByTaintManager).
	taintEvicted bool
}

// podRecorder watches every pod and notes when each was first seen Running
// and Ready, and when it was seen deleted.
type podRecorder struct {
	mu   sync.Mutex
	pods map[string]*podRecord
}

func recordPods(e *env) *podRecorder {
	r := &podRecorder{pods: map[string]*podRecord{}}
	f := informers.NewSharedInformerFactory(e.kube, 0)
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.seen(obj, false) },
		UpdateFunc: func(_, obj any) { r.seen(obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			r.seen(obj, true)
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	stop := make(chan struct{})
	e.t.Cleanup(func() { close(stop) })
	f.Start(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		e.t.Fatal("pod recorder: cache did not sync")
	}
	return r
}

func (r *podRecorder) seen(obj any, deleted bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.pods[string(p.UID)]
	if rec == nil {
		rec = &podRecord{ns: p.Namespace, name: p.Name, uid: string(p.UID)}
		r.pods[string(p.UID)] = rec
	}
	if p.Spec.NodeName != "" {
		rec.node = p.Spec.NodeName
	}
	if taintEvicted(p) {
		rec.taintEvicted = true
	}
	if deleted {
		if rec.deleted.IsZero() {
			rec.deleted = now
		}
		return
	}
	if rec.running.IsZero() && p.Status.Phase == corev1.PodRunning && podReady(p) && p.DeletionTimestamp == nil {
		rec.running = now
	}
}

func (r *podRecorder) snapshot() []podRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]podRecord, 0, len(r.pods))
	for _, p := range r.pods {
		out = append(out, *p)
	}
	return out
}

// waitLeader waits until the controller reports itself leader on /metrics.
func (e *env) waitLeader(p *controllerProc, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(p.Name+" to lead (liberator_leader 1)", timeout, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s exited:\n%s", p.Name, tail(p.logText(), 20))
		}
		v, err := metricValue(p, "liberator_leader")
		return err == nil && v == 1, err
	})
}

// metricValue scrapes one unlabeled sample (or the sum of a labeled one's
// samples) from the controller's /metrics.
func metricValue(p *controllerProc, name string) (float64, error) {
	body, err := p.Metrics()
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no sample %s", name)
	}
	return sum, nil
}

// podUID returns the pod's UID and node, or empty strings when it is gone.
func (e *env) podUID(ns, name string) (string, string) {
	p, err := e.kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", ""
	}
	return string(p.UID), p.Spec.NodeName
}

// fenceAttempts is the oracle's power-off count for scenarios fenced by the
// wait provider, which has no BMC: per node, the fence attempts liberator
// made on its Takeovers (each would be a power-off with a power fence).
func (e *env) fenceAttempts() map[string]int {
	out := map[string]int{}
	for _, n := range e.c.Nodes() {
		out[n] = 0
		for _, t := range e.takeovers(n) {
			out[n] += int(t.Status.FenceAttempts)
		}
	}
	return out
}

// powerOffs counts, per node, the power-off requests its ipmi_sim BMC got.
func (lab *ipmiLab) powerOffs() map[string]int {
	out := map[string]int{}
	for n, b := range lab.bmcs {
		out[n] = 0
		for _, ev := range b.Events() {
			if strings.HasSuffix(ev, "power 0") {
				out[n]++
			}
		}
	}
	return out
}
