package controller

import (
	"context"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
)

// retentionInterval is how often the leader prunes closed Takeovers (also
// right after it becomes leader, and after an incident closes).
const retentionInterval = 10 * time.Minute

// runRetention prunes closed Takeovers until ctx is cancelled: at once,
// every retentionInterval, and when an incident closes.
func (c *Controller) runRetention(ctx context.Context) {
	ticker := c.clock.NewTicker(retentionInterval)
	defer ticker.Stop()
	for {
		c.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-c.closedOne:
		}
	}
}

// noteClosed asks the retention loop for a pass (an incident closed).
func (c *Controller) noteClosed() {
	select {
	case c.closedOne <- struct{}{}:
	default:
	}
}

// prune deletes the closed Takeovers beyond config.Retention, as the cache
// holds them. Each deletion carries the UID and resourceVersion the cache
// saw, so a Takeover changed since is left for the next pass; an open
// Takeover is never deleted.
func (c *Controller) prune(ctx context.Context) {
	var all []*v1alpha1.Takeover
	for _, o := range c.takeovers.GetStore().List() {
		all = append(all, o.(*v1alpha1.Takeover))
	}
	cfg := c.conf()
	victims := beyondRetention(all, cfg.Retention, c.clock.Now())
	deleted := 0
	for _, t := range victims {
		if ctx.Err() != nil {
			return
		}
		uid, rv := types.UID(t.UID), t.ResourceVersion
		err := c.client.Delete(ctx, t, client.Preconditions{UID: &uid, ResourceVersion: &rv})
		switch {
		case err == nil:
			deleted++
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Gone already, or changed since the cache saw it: the next
			// pass looks again.
		default:
			c.apiResult("deleteTakeover", err)
			c.log.Info("could not delete a closed Takeover beyond retention", "takeover", t.Name, "error", err.Error())
		}
	}
	if deleted > 0 {
		c.log.Info("closed Takeovers deleted beyond retention", "deleted", deleted,
			"perNode", cfg.Retention.PerNode, "total", cfg.Retention.Total, "maxAge", cfg.Retention.MaxAge.Duration)
	}
}

// beyondRetention returns the closed Takeovers r does not keep, oldest
// first: beyond r.PerNode of their node, then beyond r.Total of all that
// remain, and any closed more than r.MaxAge before now (when set). Closed
// ones are ordered by when they closed (their Recovered entry; their
// creation when it has none), newest kept. Open Takeovers are never
// returned.
func beyondRetention(all []*v1alpha1.Takeover, r config.Retention, now time.Time) []*v1alpha1.Takeover {
	var closed []*v1alpha1.Takeover
	for _, t := range all {
		if t != nil && t.Status.Phase.Closed() {
			closed = append(closed, t)
		}
	}
	// Newest first.
	slices.SortFunc(closed, func(a, b *v1alpha1.Takeover) int {
		if c := closedAt(b).Compare(closedAt(a)); c != 0 {
			return c
		}
		if v1alpha1.Newer(a, b) {
			return -1
		}
		return 1
	})
	var victims []*v1alpha1.Takeover
	perNode := map[string]int{}
	kept := 0
	for _, t := range closed {
		perNode[t.Spec.NodeName]++
		tooOld := r.MaxAge.Duration > 0 && now.Sub(closedAt(t)) > r.MaxAge.Duration
		if tooOld || perNode[t.Spec.NodeName] > r.PerNode || kept >= r.Total {
			victims = append(victims, t)
			continue
		}
		kept++
	}
	slices.Reverse(victims)
	return victims
}

// closedAt is when t closed: its first Recovered entry, or its creation.
func closedAt(t *v1alpha1.Takeover) time.Time {
	if at := t.PhaseTime(v1alpha1.PhaseRecovered); at != nil {
		return at.Time
	}
	return t.CreationTimestamp.Time
}
