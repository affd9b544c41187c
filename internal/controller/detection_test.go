package controller

import (
	"testing"
	"time"
)

// The tick's scan queues a node whose window closes before the next tick
// for the instant it closes, so detection does not wait for a later tick.
func TestScanLooksAtANodeTheMomentItsWindowCloses(t *testing.T) {
	f := newFixture(t, statefulWorkload()...)
	window := f.cfg.UnhealthyAfter.Duration
	f.fail(failedNode)
	f.advance(window - 2*time.Second)
	for f.c.queue.Len() > 0 { // what the informers queued
		name, _ := f.c.queue.Get()
		f.c.queue.Done(name)
	}
	f.c.scan()
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("%d node(s) queued 2 s before any window closes", n)
	}
	// 400 ms before the window closes (on the controller's clock), the
	// next tick would come 600 ms late.
	f.advance(2*time.Second - 400*time.Millisecond)
	start := time.Now()
	f.c.scan()
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("%d node(s) queued before the window closed", n)
	}
	stop := time.AfterFunc(3*time.Second, f.c.queue.ShutDown)
	defer stop.Stop()
	name, shutdown := f.c.queue.Get()
	waited := time.Since(start)
	if shutdown {
		t.Fatalf("nothing queued within %v: the node waits for a later tick", waited)
	}
	f.c.queue.Done(name)
	if name != failedNode {
		t.Fatalf("queued %q, want %s", name, failedNode)
	}
	if waited < 390*time.Millisecond || waited > 900*time.Millisecond {
		t.Errorf("queued after %v, want when its window closes (400 ms)", waited)
	}
	if n := f.c.queue.Len(); n != 0 {
		t.Errorf("%d other node(s) queued; the healthy ones are not about to expire", n)
	}
}
