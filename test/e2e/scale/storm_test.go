//go:build e2e

package scale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// storm powers whole slices off at once (the share -scale.storm of the
// nodes) and waits until every StatefulSet pod that ran there is Ready on a
// node that is up, sampling the Takeovers between Fencing and Released to
// check maxConcurrent.
func (b *bench) storm(ctx context.Context) {
	t := b.t
	if b.sz.stormSlices == 0 {
		t.Log("storm skipped (-scale.storm=0)")
		return
	}
	kube := fastClient(t, b.e)
	dead := map[string]bool{victim: true}
	stormNodes := map[string]bool{}
	off := b.slices[len(b.slices)-b.sz.stormSlices:]
	for _, s := range off {
		for _, n := range s.Nodes() {
			dead[n], stormNodes[n] = true, true
		}
	}
	moving := b.statefulPodsOn(ctx, kube, stormNodes)
	t0 := time.Now()
	for _, s := range off {
		if err := s.PowerOff(); err != nil {
			t.Fatal(err)
		}
	}
	b.res.stormNodes, b.res.stormPods = len(stormNodes), len(moving)
	t.Logf("storm: %d slices, %d nodes off in %s; %d StatefulSet pods ran there",
		len(off), len(stormNodes), time.Since(t0).Round(time.Millisecond), len(moving))

	var maxSeen atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.sampleConcurrency(ctx, stop, &maxSeen) }()
	stopSampler := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSampler()

	interval := 250 * time.Millisecond
	if b.sz.nodes > 200 {
		interval = 2 * time.Second
	}
	deadline := t0.Add(b.sz.window + 10*time.Minute + time.Duration(len(stormNodes))*time.Second)
	lastLog := time.Now()
	for {
		released := b.released(ctx, stormNodes)
		moved := b.moved(ctx, kube, moving, dead)
		if released == len(stormNodes) && moved == len(moving) {
			b.res.stormLastReady = time.Since(t0)
			b.res.stormReleased, b.res.stormMoved = released, moved
			break
		}
		if b.sz.stormLimit > 0 && time.Since(t0) > b.sz.stormLimit {
			b.res.stormPartial = fmt.Sprintf("stopped watching after %s: %d of %d nodes released, %d of %d StatefulSet pods Ready elsewhere",
				b.sz.stormLimit, released, len(stormNodes), moved, len(moving))
			b.res.stormReleased, b.res.stormMoved = released, moved
			t.Logf("storm: %s (-scale.stormLimit)", b.res.stormPartial)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storm: after %s, %d of %d nodes released, %d of %d StatefulSet pods Ready elsewhere",
				time.Since(t0).Round(time.Second), released, len(stormNodes), moved, len(moving))
		}
		if time.Since(lastLog) > 10*time.Second {
			t.Logf("storm: T+%s: %d of %d nodes released, %d of %d StatefulSet pods Ready elsewhere, at most %d takeovers fencing at once",
				time.Since(t0).Round(time.Second), released, len(stormNodes), moved, len(moving), maxSeen.Load())
			lastLog = time.Now()
		}
		time.Sleep(interval)
	}
	stopSampler()
	b.res.stormMaxSeen = int(maxSeen.Load())
	tks := b.onlyTakeovers(ctx, dead)
	b.res.takeovers = len(tks)
	detected := map[string]bool{}
	for _, tk := range tks {
		detected[tk.Spec.NodeName] = true
	}
	for n := range stormNodes {
		if !detected[n] {
			t.Errorf("storm: node %s has no Takeover %s after its power-off", n, time.Since(t0).Round(time.Second))
		}
	}
	if b.res.stormMaxSeen > b.sz.maxConcurrent {
		t.Errorf("storm: %d takeovers were between Fencing and Released at once; maxConcurrent is %d", b.res.stormMaxSeen, b.sz.maxConcurrent)
	}
	if b.res.stormPartial == "" {
		t.Logf("storm: every StatefulSet pod Ready elsewhere %.1f s after the power-off; at most %d takeovers fencing at once (limit %d)",
			b.res.stormLastReady.Seconds(), b.res.stormMaxSeen, b.sz.maxConcurrent)
	}
}

// podRef is a pod that must come back: the same name, a new UID.
type podRef struct {
	name string
	uid  types.UID
}

func (b *bench) statefulPodsOn(ctx context.Context, kube kubernetes.Interface, nodes map[string]bool) []podRef {
	l, err := kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: kindLabel + "=" + stateful})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []podRef
	for _, p := range l.Items {
		if nodes[p.Spec.NodeName] {
			out = append(out, podRef{p.Name, p.UID})
		}
	}
	return out
}

// moved counts the pods whose replacement is Ready on a node that is up.
func (b *bench) moved(ctx context.Context, kube kubernetes.Interface, refs []podRef, dead map[string]bool) int {
	l, err := kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: kindLabel + "=" + stateful})
	if err != nil {
		return 0
	}
	byName := map[string]*corev1.Pod{}
	for i := range l.Items {
		byName[l.Items[i].Name] = &l.Items[i]
	}
	n := 0
	for _, r := range refs {
		p := byName[r.name]
		if p != nil && p.UID != r.uid && p.DeletionTimestamp == nil && p.Spec.NodeName != "" &&
			!dead[p.Spec.NodeName] && kit.PodReady(p) {
			n++
		}
	}
	return n
}

// released counts the nodes whose latest Takeover has been Released.
func (b *bench) released(ctx context.Context, nodes map[string]bool) int {
	l := &v1alpha1.TakeoverList{}
	if err := b.e.TK.List(ctx, l); err != nil {
		return 0
	}
	done := map[string]bool{}
	for _, tk := range l.Items {
		if nodes[tk.Spec.NodeName] && tk.PhaseTime(v1alpha1.PhaseReleased) != nil {
			done[tk.Spec.NodeName] = true
		}
	}
	return len(done)
}

// sampleConcurrency lists the Takeovers until stop and records the most
// seen at once in Fencing or Fenced (between taking a fence slot and
// Released).
func (b *bench) sampleConcurrency(ctx context.Context, stop <-chan struct{}, maxSeen *atomic.Int64) {
	every := 250 * time.Millisecond
	if b.sz.nodes > 200 {
		every = time.Second
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(every):
		}
		l := &v1alpha1.TakeoverList{}
		if err := b.e.TK.List(ctx, l); err != nil {
			continue
		}
		n := int64(0)
		for _, tk := range l.Items {
			if tk.Status.Phase == v1alpha1.PhaseFencing || tk.Status.Phase == v1alpha1.PhaseFenced {
				n++
			}
		}
		if n > maxSeen.Load() {
			maxSeen.Store(n)
		}
	}
}
