package kit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/release"
)

// WaitWatching waits until ctl is ready (its caches synced) and has seen
// node's Lease renew since, as a controller that ran long before a failure
// has; a failure caused before that would time the controller's start-up
// too. It then waits a random part of the Lease's renew interval (a quarter
// of its duration, as the kubelet renews), so that the failure caused next
// falls at a random moment of the renewal cycle, as a real one does, and
// returns that part.
func (e *Env) WaitWatching(ctx context.Context, ctl *Controller, node string) (time.Duration, error) {
	var ready time.Time
	var renewEvery time.Duration
	err := Retry(2*time.Minute, func() error {
		if ready.IsZero() {
			if !ctl.Ready() {
				return fmt.Errorf("controller %s not ready (/readyz)", ctl.Name)
			}
			ready = time.Now()
		}
		l, err := e.Kube.CoordinationV1().Leases(release.NodeLeaseNamespace).Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(ready) {
			return fmt.Errorf("no renewal of the Lease of %s since the controller was ready", node)
		}
		if l.Spec.LeaseDurationSeconds != nil {
			renewEvery = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second / 4
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The renewal's delivery to the controller, then a random phase.
	phase := 100*time.Millisecond + rand.N(max(renewEvery, time.Millisecond))
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(phase):
	}
	return phase, nil
}
