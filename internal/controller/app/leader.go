package app

import (
	"context"
	"os"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runElected runs the controller while this replica holds the leader
// Lease, until ctx ends or an endpoint fails.
func (r *runner) runElected() error {
	id := identity()
	// The leader lease is released only after the work loop has finished its
	// steps, so the next leader never overlaps with a step under way.
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(r.ctx))
	defer leCancel()
	le, err := r.elector(id, leCancel)
	if err != nil {
		return err
	}
	go func() {
		<-r.ctx.Done()
		// If this replica never led, nothing runs to cancel the elector.
		if !r.c.Leading() {
			leCancel()
		}
	}()
	go func() {
		if err := <-r.serveErr; err != nil {
			r.log.Error(err, "server failed")
			r.stop()
		}
	}()
	le.Run(leCtx)
	return nil
}

// identity is this replica's name in the leader Lease: the pod's name (or
// the host's) and a UUID.
func identity() string {
	id := os.Getenv("POD_NAME")
	if id == "" {
		host, _ := os.Hostname()
		id = host
	}
	return id + "_" + string(uuid.NewUUID())
}

// elector builds the leader elector; leCancel ends its run once the work
// loop has stopped.
func (r *runner) elector(id string, leCancel context.CancelFunc) (*leaderelection.LeaderElector, error) {
	le := r.cfg.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name,
		r.kube.CoreV1(), r.kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id, EventRecorder: r.recorder})
	if err != nil {
		return nil, err
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: le.Name,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		WatchDog:        r.watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				r.log.Info("became leader", "identity", id)
				r.lead(lctx)
				leCancel()
			},
			OnStoppedLeading: func() {
				if r.ctx.Err() == nil {
					// Lost the lease without being asked to stop: another
					// replica may act now, so this one must stop at once.
					r.log.Info("lost leadership; exiting so that only one replica acts")
					os.Exit(1)
				}
				r.log.Info("released leadership")
			},
			OnNewLeader: func(identity string) {
				if identity != id {
					r.log.Info("standing by", "leader", identity)
				}
			},
		},
	})
}

// lead runs the work loop until the lease is lost (lctx ends) or the
// controller is asked to stop.
func (r *runner) lead(lctx context.Context) {
	runCtx, cancel := context.WithCancel(r.ctx)
	go func() {
		select {
		case <-lctx.Done():
		case <-runCtx.Done():
		}
		cancel()
	}()
	r.c.Run(runCtx)
}
