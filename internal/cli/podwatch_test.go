package cli

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

var loopT0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// fakePods is a fake clientset holding pods, and a channel closed once a
// pod watch is established (changes made before would be missed).
func fakePods(pods ...*corev1.Pod) (*fake.Clientset, <-chan struct{}) {
	objs := make([]runtime.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	kube := fake.NewClientset(objs...)
	watching := make(chan struct{})
	var once atomic.Bool
	kube.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		if once.CompareAndSwap(false, true) {
			defer close(watching)
		}
		return false, nil, nil
	})
	return kube, watching
}

// ended waits for the loop's result.
func ended(t *testing.T, end <-chan loopEnd) loopEnd {
	t.Helper()
	select {
	case e := <-end:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not end")
		return -1
	}
}

// waiters waits until the fake clock has n timers and tickers.
func waiters(t *testing.T, clk *testingclock.FakeClock, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); clk.Waiters() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the loop set %d timers, want %d", clk.Waiters(), n)
		}
	}
}

// A StatefulSet pod leaves w1: the loop reports its replacement scheduled
// on w2, then Ready there, each at the fake clock's time of the change,
// and ends once nothing is waited for.
func TestWatchLoopReportsReplacementProgress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := testingclock.NewFakeClock(loopT0)
	old := ownedPod("db", "mysql-0", "w1", "StatefulSet", "mysql")
	sibling := ownedPod("db", "mysql-1", "w2", "StatefulSet", "mysql")
	kube, watching := fakePods(&old, readyPod(sibling, "w2", true))
	w, err := watchPods(ctx, kube, []string{"db"}, clk)
	if err != nil {
		t.Fatal(err)
	}
	<-watching
	tr := newTracker([]*movingPod{newMovingPod(&old, riskStatefulSet)})
	for _, p := range w.pods() {
		tr.noteExisting(p)
	}
	lines := make(chan string, 16)
	loop := &watchLoop{
		clock: clk, tracker: tr, events: w.events,
		progress: func(p progress, at time.Time) { lines <- offset(at.Sub(loopT0)) + " " + p.describe() },
		done:     func() bool { return len(tr.waiting()) == 0 },
	}
	end := make(chan loopEnd, 1)
	go func() { end <- loop.run(ctx, time.Minute) }()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("progress %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no progress line, want %q", want)
		}
	}

	pods := kube.CoreV1().Pods("db")
	if err := pods.Delete(ctx, "mysql-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	repl := old.DeepCopy()
	repl.UID, repl.Spec.NodeName, repl.Status = "uid-mysql-0-new", "", corev1.PodStatus{Phase: corev1.PodPending}
	if _, err := pods.Create(ctx, repl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	if _, err := pods.Update(ctx, readyPod(*repl, "w2", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("+3.0s db/mysql-0 scheduled on w2")
	clk.Step(4 * time.Second)
	if _, err := pods.Update(ctx, readyPod(*repl, "w2", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("+7.0s db/mysql-0 Ready on w2 (StatefulSet/mysql)")
	if e := ended(t, end); e != loopDone {
		t.Fatalf("loop ended with %v, want done", e)
	}
	m := tr.pods[0]
	if !m.Scheduled.Equal(loopT0.Add(3*time.Second)) || !m.Ready.Equal(loopT0.Add(7*time.Second)) || m.Replacement != "mysql-0" {
		t.Errorf("moved pod after the loop: %+v", m)
	}
}

// Nothing comes back: the loop polls on its clock's ticks and gives up
// when its clock reaches the timeout, not before.
func TestWatchLoopTimesOutByItsClock(t *testing.T) {
	clk := testingclock.NewFakeClock(loopT0)
	old := ownedPod("db", "mysql-0", "w1", "StatefulSet", "mysql")
	tr := newTracker([]*movingPod{newMovingPod(&old, riskStatefulSet)})
	polls := make(chan time.Time, 16)
	loop := &watchLoop{
		clock: clk, tracker: tr,
		progress:  func(progress, time.Time) { t.Error("progress without a pod change") },
		poll:      func(now time.Time) { polls <- now },
		pollEvery: 250 * time.Millisecond,
		done:      func() bool { return len(tr.waiting()) == 0 },
	}
	end := make(chan loopEnd, 1)
	go func() { end <- loop.run(context.Background(), 10*time.Second) }()
	waiters(t, clk, 2)
	clk.Step(9 * time.Second)
	select {
	case now := <-polls:
		if !now.Equal(loopT0.Add(9 * time.Second)) {
			t.Errorf("polled at %s, want the fake clock's +9s", now.Sub(loopT0))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no poll on the fake clock's tick")
	}
	select {
	case e := <-end:
		t.Fatalf("the loop ended with %v after 9s of a 10s timeout", e)
	default:
	}
	clk.Step(time.Second)
	if e := ended(t, end); e != loopTimedOut {
		t.Fatalf("loop ended with %v, want timed out", e)
	}
}

// The drill's way: a poll decides when the loop is done; a cancelled
// context interrupts it.
func TestWatchLoopDoneByPollAndInterrupted(t *testing.T) {
	clk := testingclock.NewFakeClock(loopT0)
	tr := newTracker(nil)
	polled := make(chan struct{}, 1)
	var finished atomic.Bool
	loop := &watchLoop{
		clock: clk, tracker: tr,
		poll: func(now time.Time) {
			finished.Store(!now.Before(loopT0.Add(500 * time.Millisecond)))
			polled <- struct{}{}
		},
		pollEvery: 250 * time.Millisecond,
		done:      finished.Load,
	}
	end := make(chan loopEnd, 1)
	go func() { end <- loop.run(context.Background(), time.Minute) }()
	waiters(t, clk, 2)
	clk.Step(250 * time.Millisecond)
	<-polled
	clk.Step(250 * time.Millisecond)
	<-polled
	if e := ended(t, end); e != loopDone {
		t.Fatalf("loop ended with %v, want done", e)
	}

	ctx, cancel := context.WithCancel(context.Background())
	finished.Store(false)
	go func() { end <- loop.run(ctx, time.Minute) }()
	cancel()
	if e := ended(t, end); e != loopInterrupted {
		t.Fatalf("loop ended with %v, want interrupted", e)
	}
}
