package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// podWatch delivers every change of the pods of some namespaces, each with
// the time it arrived, on one channel.
type podWatch struct {
	events chan podChange
	stores []cache.Store
}

// podChange is a pod added or updated, or deleted.
type podChange struct {
	podEvent
	deleted bool
}

// watchPods starts pod informers for the namespaces and waits until they
// have listed them. They stop with ctx. Each change is stamped with clk's
// time of its arrival.
func watchPods(ctx context.Context, kube kubernetes.Interface, namespaces []string, clk clock.PassiveClock) (*podWatch, error) {
	w := &podWatch{events: make(chan podChange, 1024)}
	send := func(obj any, deleted bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		select {
		case w.events <- podChange{podEvent: podEvent{pod: p, at: clk.Now()}, deleted: deleted}:
		case <-ctx.Done():
		}
	}
	sort.Strings(namespaces)
	var synced []cache.InformerSynced
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
		inf := f.Core().V1().Pods().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { send(obj, false) },
			UpdateFunc: func(_, obj any) { send(obj, false) },
			DeleteFunc: func(obj any) { send(obj, true) },
		}); err != nil {
			return nil, err
		}
		f.Start(ctx.Done())
		synced = append(synced, inf.HasSynced)
		w.stores = append(w.stores, inf.GetStore())
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), synced...) {
		return nil, fmt.Errorf("cannot watch pods in %v: not listed within a minute (check the permission to list and watch pods)", namespaces)
	}
	return w, nil
}

// pods returns every pod the informers hold now.
func (w *podWatch) pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, s := range w.stores {
		for _, obj := range s.List() {
			if p, ok := obj.(*corev1.Pod); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// feed applies a pod change to the tracker.
func (t *tracker) feed(c podChange) []progress {
	if c.deleted {
		return t.forget(c.pod)
	}
	return t.observe(c.pod, c.at)
}

// namespacesOf lists the namespaces of the moving pods.
func namespacesOf(pods []*movingPod) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range pods {
		if !seen[m.Namespace] {
			seen[m.Namespace] = true
			out = append(out, m.Namespace)
		}
	}
	return out
}

// watchLoop is the one loop the evacuate and drill commands wait in. It
// feeds the pod changes to the tracker and reports each step they bring,
// calls poll at a fixed interval for whatever else the command waits for,
// and ends when done says so, at the timeout, or with ctx. Its clock is
// injected, so that a test can drive it.
type watchLoop struct {
	clock   clock.WithTicker
	tracker *tracker
	// events are the pod changes; nil when no pods are watched.
	events <-chan podChange
	// progress is called with each step a pod change brings and the time
	// the change arrived.
	progress func(p progress, at time.Time)
	// poll, when set, is called every pollEvery with the clock's time.
	poll      func(now time.Time)
	pollEvery time.Duration
	// done reports whether everything waited for has happened; it is asked
	// before each wait.
	done func() bool
}

// loopEnd is why a watchLoop ended.
type loopEnd int

const (
	loopDone loopEnd = iota
	loopTimedOut
	loopInterrupted
)

// run waits until done, for at most timeout.
func (l *watchLoop) run(ctx context.Context, timeout time.Duration) loopEnd {
	if l.done() {
		return loopDone
	}
	timer := l.clock.NewTimer(timeout)
	defer timer.Stop()
	var tick <-chan time.Time
	if l.poll != nil {
		t := l.clock.NewTicker(l.pollEvery)
		defer t.Stop()
		tick = t.C()
	}
	for !l.done() {
		select {
		case ch := <-l.events:
			for _, p := range l.tracker.feed(ch) {
				l.progress(p, ch.at)
			}
		case <-tick:
			l.poll(l.clock.Now())
		case <-timer.C():
			return loopTimedOut
		case <-ctx.Done():
			return loopInterrupted
		}
	}
	return loopDone
}
