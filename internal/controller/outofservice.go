package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
)

// outOfService adds the out-of-service taint to a node whose pods were
// force-deleted, once their StatefulSet replacements exist.
//
// Why in this order: Kubernetes' taint-eviction controller deletes the pods
// of a node tainted NoExecute by name, reading the pod afresh by name right
// before it deletes it. Tainted while the old pod still exists, it can fire
// after liberator's force-delete and the StatefulSet's recreation, and
// delete the replacement, which must then be recreated and scheduled again.
// Once the replacement exists, the StatefulSet controller (in the same
// kube-controller-manager, on the same shared pod cache) has seen the old
// pod gone, so the taint-eviction controller finds no pod on the node to
// evict. The taint is still needed: it makes the attach-detach controller
// let go of the node's volumes at once.
func (c *Controller) outOfService(ctx context.Context, t *v1alpha1.Takeover) error {
	start := time.Now()
	c.awaitReplacementsCreated(ctx, t)
	waited := time.Since(start)
	for range 5 {
		live, err := release.Live(ctx, c.kube, t.Spec.NodeName, t.DetectedHeartbeat())
		c.apiResult("liveRead", err)
		switch {
		case apierrors.IsNotFound(err):
			return nil // the Node is gone: nothing to taint
		case errors.Is(err, release.ErrHeartbeat):
			// The next step records the interruption; no out-of-service
			// taint on a node whose heartbeat changed.
			return fmt.Errorf("out-of-service taint not added: %w", err)
		case err != nil:
			return fmt.Errorf("live re-read of node %s before the out-of-service taint: %w", t.Spec.NodeName, err)
		}
		err = release.Taint(ctx, c.kube, live, release.OutOfServiceTaint)
		c.apiResult("releaseNode", err)
		if !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("out-of-service taint on node %s: %w", t.Spec.NodeName, err)
			}
			c.log.Info("out-of-service taint added", "node", t.Spec.NodeName, "waitedForReplacements", waited.Round(time.Millisecond).String(), "took", time.Since(start).Round(time.Millisecond).String())
			return nil
		}
	}
	return fmt.Errorf("out-of-service taint on node %s: the Node kept changing (conflict 5 times)", t.Spec.NodeName)
}

// awaitReplacementsCreated waits until every released StatefulSet pod has
// a pod of the same name with another UID in the cache, at most
// Options.ReplacementWait (a bound on waiting for another controller, on
// the wall clock; a StatefulSet scaled down or deleted never recreates).
func (c *Controller) awaitReplacementsCreated(ctx context.Context, t *v1alpha1.Takeover) {
	deadline := time.Now().Add(c.replWait)
	for {
		missing := c.replacementsMissing(t)
		if missing == "" {
			return
		}
		if !time.Now().Before(deadline) {
			if c.replWait > 0 {
				c.log.Info("replacement not created yet; adding the out-of-service taint anyway", "node", t.Spec.NodeName, "pod", missing, "waited", c.replWait)
			}
			return
		}
		timer := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// replacementsMissing names the first released StatefulSet pod whose
// replacement is not in the cache yet ("" when none).
func (c *Controller) replacementsMissing(t *v1alpha1.Takeover) string {
	for _, m := range t.Status.MovedPods {
		if m.OwnerKind != "StatefulSet" {
			continue
		}
		obj, ok, _ := c.pods.GetStore().GetByKey(m.Namespace + "/" + m.Name)
		if p, isPod := obj.(*podInfo); !ok || !isPod || string(p.UID) == m.UID {
			return m.Namespace + "/" + m.Name
		}
	}
	return ""
}
