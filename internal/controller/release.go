package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/internal/replacement"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
)

// release frees a fenced node's workloads. Right before the first
// destructive call it re-reads the Node and Lease from the API server, and
// decide.BeforeRelease stops it if a heartbeat arrived (docs/design.md,
// rule 2).
func (c *Controller) release(ctx context.Context, t *v1alpha1.Takeover) (time.Duration, error) {
	name := t.Spec.NodeName
	live, check, err := c.liveCheck(ctx, t)
	if err != nil {
		return 0, err
	}
	d := decide.BeforeRelease(incident(t), check)
	switch {
	case d.Action == decide.Redetect:
		return soon, c.redetect(ctx, t, d, check)
	case d.Action != decide.Release:
		return c.abort(ctx, t, d)
	case d.Reason == decide.ReasonReleaseInterrupted:
		return soon, c.released(ctx, t, d, len(t.Status.MovedPods), len(t.Status.ReleasedVolumeAttachments))
	}
	pods, err := release.PodsOnNode(ctx, c.kube, name)
	c.apiResult("listPods", err)
	if err != nil {
		return 0, err
	}
	// Record the pods, and that the release began, before touching
	// anything, so a step cut short and resumed by another replica still
	// knows what it moved and rolls forward.
	added := c.recordPods(t, pods)
	if added || t.Status.ReleaseStarted == nil {
		if t.Status.ReleaseStarted == nil {
			now := metav1.NewMicroTime(c.clock.Now())
			t.Status.ReleaseStarted = &now
		}
		if err := c.writeStatus(ctx, t); err != nil {
			return 0, err
		}
	}
	if live != nil { // a deleted Node has no Node step
		err = c.releaseNode(ctx, t.Spec.Strategy, live)
		c.apiResult("releaseNode", err)
		if apierrors.IsConflict(err) {
			// The Node changed between the live read and the call: look again.
			return soon, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%s on node %s: %w", t.Spec.Strategy, name, err)
		}
	}
	vas, err := c.freeWorkloads(ctx, name, pods)
	if err == nil && live != nil && t.Spec.Strategy == v1alpha1.StrategyOutOfServiceTaint {
		err = c.outOfService(ctx, t)
		if errors.Is(err, release.ErrHeartbeat) {
			// A heartbeat after the pods were released: nothing more is
			// done to the node (no out-of-service taint); what was released
			// is recorded.
			t.Status.ReleasedVolumeAttachments = appendNew(t.Status.ReleasedVolumeAttachments, vas...)
			d := decide.BeforeRelease(incident(t), decide.Live{Exists: true, UID: t.Spec.NodeUID, HeartbeatChanged: true, Detail: err.Error()})
			return soon, c.released(ctx, t, d, len(pods), len(vas))
		}
	}
	if err != nil {
		// Say so where the operator looks (a denied deletion, say); the step
		// is retried with backoff and rolls forward once it succeeds.
		if werr := c.transition(ctx, t, step{phase: t.Status.Phase, reason: decide.ReasonReleaseFailed,
			message: "the release is under way but a deletion failed, and is retried: " + err.Error(),
			log:     "release step failed; retrying", event: decide.ReasonReleaseFailed, warning: true}); werr != nil {
			c.log.Info("could not record the failed release step", "node", name, "error", werr.Error())
		}
		return 0, err
	}
	t.Status.ReleasedVolumeAttachments = appendNew(t.Status.ReleasedVolumeAttachments, vas...)
	return soon, c.released(ctx, t, d, len(pods), len(vas))
}

// liveCheck re-reads the Node and its Lease from the API server and says
// what decide.BeforeRelease needs: does the Node exist, is it the same, did
// its heartbeat change.
func (c *Controller) liveCheck(ctx context.Context, t *v1alpha1.Takeover) (*corev1.Node, decide.Live, error) {
	live, err := release.Live(ctx, c.kube, t.Spec.NodeName, t.DetectedHeartbeat())
	switch {
	case errors.Is(err, release.ErrHeartbeat):
		return live, decide.Live{Exists: true, UID: string(live.UID), HeartbeatChanged: true, Detail: err.Error()}, nil
	case apierrors.IsNotFound(err):
		// The Node is gone; its Lease may not be, and may have renewed.
		changed, now, lerr := release.LiveLease(ctx, c.kube, t.Spec.NodeName, t.DetectedHeartbeat())
		c.apiResult("liveRead", lerr)
		if lerr != nil {
			return nil, decide.Live{}, fmt.Errorf("live re-read of the Lease of deleted node %s: %w", t.Spec.NodeName, lerr)
		}
		return nil, decide.Live{HeartbeatChanged: changed, Detail: now}, nil
	case err != nil:
		c.apiResult("liveRead", err)
		return nil, decide.Live{}, fmt.Errorf("live re-read of node %s: %w", t.Spec.NodeName, err)
	}
	return live, decide.Live{Exists: true, UID: string(live.UID)}, nil
}

// releaseNode applies the strategy's first step to the live Node (its
// resourceVersion is the precondition). OutOfServiceTaint and ForceDelete
// both begin with liberator's NoSchedule taint, so that no released pod is
// placed back on the fenced node; the out-of-service taint itself comes
// after the pods are gone (outOfService).
func (c *Controller) releaseNode(ctx context.Context, s v1alpha1.Strategy, live *corev1.Node) error {
	switch s {
	case v1alpha1.StrategyOutOfServiceTaint, v1alpha1.StrategyForceDelete:
		return release.Taint(ctx, c.kube, live, release.FencedTaint)
	case v1alpha1.StrategyDeleteNode:
		return release.DeleteNode(ctx, c.kube, live)
	}
	return fmt.Errorf("unknown release strategy %q", s)
}

// deleteParallel is how many of one node's pods are force-deleted at once:
// a busy API server answers each call in a fraction of a second, and a node
// may hold a hundred pods.
const deleteParallel = 8

// freeWorkloads force-deletes the node's pods and deletes its
// VolumeAttachments; it returns the names of those deleted.
func (c *Controller) freeWorkloads(ctx context.Context, node string, pods []corev1.Pod) ([]string, error) {
	var g errgroup.Group
	g.SetLimit(deleteParallel)
	for i := range pods {
		g.Go(func() error {
			err := release.ForceDeletePod(ctx, c.kube, &pods[i])
			c.apiResult("deletePod", err)
			if err != nil {
				return fmt.Errorf("force-delete pod %s/%s: %w", pods[i].Namespace, pods[i].Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	vas, err := release.DeleteVolumeAttachments(ctx, c.kube, c.cachedVAs(node))
	c.apiResult("deleteVolumeAttachment", err)
	return vas, err
}

// released records the release, with an event on each moved pod's owner.
// A release interrupted by a heartbeat is recorded as it stands, with a
// Warning.
func (c *Controller) released(ctx context.Context, t *v1alpha1.Takeover, d decide.Decision, pods, vas int) error {
	s := step{phase: v1alpha1.PhaseReleased, reason: decide.ReasonReleased,
		message: fmt.Sprintf("released by %s: pods force-deleted: %d, VolumeAttachments deleted: %d", t.Spec.Strategy, pods, vas),
		log:     "node released", kv: []any{"strategy", t.Spec.Strategy, "pods", pods, "volumeAttachments", vas}, event: decide.ReasonReleased}
	switch d.Reason {
	case decide.ReasonReleaseInterrupted:
		s.reason, s.event, s.warning = d.Reason, d.Reason, true
		s.message = fmt.Sprintf("%s; recorded: pods %d, VolumeAttachments %d; liberator's taint stays until the node returns rebooted", d.Message, pods, vas)
	case decide.ReasonNodeGoneBeforeFence:
		s.message = fmt.Sprintf("the Node object was deleted; released its pods (%d force-deleted) and VolumeAttachments (%d deleted)", pods, vas)
	}
	if err := c.transition(ctx, t, s); err != nil {
		return err
	}
	for _, p := range t.Status.MovedPods {
		if ref := ownerRef(t, p); ref != nil {
			c.recorder.Eventf(ref, corev1.EventTypeNormal, decide.EventPodReleased, "pod %s released from failed node %s (Takeover %s)", p.Name, t.Spec.NodeName, t.Name)
		}
	}
	return nil
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

// recordPods adds the pods not yet in t's MovedPods, each with the UIDs of
// its owner's other pods (from the cache), none of which is its
// replacement; it reports whether any were added.
func (c *Controller) recordPods(t *v1alpha1.Takeover, pods []corev1.Pod) bool {
	added := false
	for i := range pods {
		d := release.Describe(&pods[i])
		known := false
		for _, m := range t.Status.MovedPods {
			known = known || (m.Namespace == d.Namespace && m.Name == d.Name)
		}
		if known {
			continue
		}
		t.Status.MovedPods = append(t.Status.MovedPods, v1alpha1.MovedPod{
			Namespace: d.Namespace, Name: d.Name, UID: string(d.UID),
			OwnerKind: d.OwnerKind, OwnerName: d.OwnerName, OwnerUID: string(d.OwnerUID), OwnerAPIVersion: d.OwnerAPIVersion,
			SiblingUIDs: c.siblings(d),
		})
		added = true
	}
	return added
}

func ownerRef(t *v1alpha1.Takeover, p v1alpha1.MovedPod) *corev1.ObjectReference {
	if p.OwnerKind == "" {
		return nil
	}
	return &corev1.ObjectReference{Kind: p.OwnerKind, APIVersion: p.OwnerAPIVersion, Namespace: p.Namespace, Name: p.OwnerName, UID: types.UID(p.OwnerUID)}
}

// siblings returns the UIDs of the owner's other pods in the cache, for a
// pod whose replacement gets a new name (not a StatefulSet's).
func (c *Controller) siblings(d release.Pod) []string {
	if d.OwnerUID == "" || d.OwnerKind == "StatefulSet" {
		return nil
	}
	return replacement.SiblingUIDs(d.OwnerUID, d.UID, c.ownedPods(string(d.OwnerUID)))
}
