package controller

import (
	"context"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/kubeutil"
	"github.com/liberator-dev/liberator/internal/release"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Index names of the informer caches.
const (
	byNode  = "node"
	byOwner = "owner"
	byPhase = "phase"
)

func (c *Controller) takeoverListWatch() *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			l := &v1alpha1.TakeoverList{}
			err := c.client.List(ctx, l, &client.ListOptions{Raw: &opts})
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.client.Watch(ctx, &v1alpha1.TakeoverList{}, &client.ListOptions{Raw: &opts})
		},
	}
}

func (c *Controller) addHandlers() error {
	if _, err := c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.onNode(o) },
		UpdateFunc: func(_, o any) { c.onNode(o) },
		DeleteFunc: func(o any) {
			if n, ok := tombstone(o).(*corev1.Node); ok {
				c.health.forgetNode(n.Name)
				c.queue.Add(n.Name)
			}
		},
	}); err != nil {
		return err
	}
	if _, err := c.leases.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.onLease(o, c.conf().UnhealthyAfter.Duration) },
		UpdateFunc: func(_, o any) { c.onLease(o, c.conf().UnhealthyAfter.Duration) },
		DeleteFunc: func(o any) {
			if l, ok := tombstone(o).(*coordinationv1.Lease); ok {
				c.health.forgetLease(l.Name)
			}
		},
	}); err != nil {
		return err
	}
	podChanged := func(any) { c.enqueueReleased() }
	if _, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: podChanged, DeleteFunc: podChanged,
		UpdateFunc: func(old, o any) {
			// Only what the replacement model reads matters to a released
			// incident: a status heartbeat of some pod elsewhere does not.
			if a, ok := old.(*podInfo); ok {
				if b, ok := o.(*podInfo); ok && a.Ready == b.Ready && a.NodeName == b.NodeName &&
					a.Phase == b.Phase && (a.DeletionTimestamp == nil) == (b.DeletionTimestamp == nil) {
					return
				}
			}
			podChanged(o)
		},
	}); err != nil {
		return err
	}
	tkChanged := func(o any) {
		if t, ok := tombstone(o).(*v1alpha1.Takeover); ok {
			c.queue.Add(t.Spec.NodeName)
			if t.Status.Phase.Closed() {
				// The cache holds it closed now: a retention pass sees it.
				c.noteClosed()
			}
		}
	}
	_, err := c.takeovers.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: tkChanged, UpdateFunc: func(_, o any) { tkChanged(o) },
		DeleteFunc: func(o any) {
			if t, ok := tombstone(o).(*v1alpha1.Takeover); ok {
				c.forgetSeen(t) // its slot goes when its node is next reconciled
			}
			tkChanged(o)
		},
	})
	return err
}

func tombstone(o any) any {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return o
}

func (c *Controller) onNode(o any) {
	n, ok := o.(*corev1.Node)
	if !ok {
		return
	}
	c.health.observeNode(n.Name, kubeutil.NodeReady(n))
	c.queue.Add(n.Name)
}

func (c *Controller) onLease(o any, window time.Duration) {
	l, ok := o.(*coordinationv1.Lease)
	if !ok {
		return
	}
	renew := ""
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	c.health.observeLease(l.Name, renew, window)
	// A renewal matters at once only to a node with an open incident (its
	// heartbeat resumed); healthy nodes are looked at by the tick.
	if c.openTakeover(l.Name) != nil {
		c.queue.Add(l.Name)
	}
}

// enqueueReleased queues the nodes whose released workloads are being
// watched.
func (c *Controller) enqueueReleased() {
	objs, _ := c.takeovers.GetIndexer().ByIndex(byPhase, string(v1alpha1.PhaseReleased))
	for _, o := range objs {
		c.queue.Add(o.(*v1alpha1.Takeover).Spec.NodeName)
	}
}

func podNodeIndex(o any) ([]string, error) {
	p, ok := o.(*podInfo)
	if !ok || p.NodeName == "" {
		return nil, nil
	}
	return []string{p.NodeName}, nil
}

func podOwnerIndex(o any) ([]string, error) {
	p, ok := o.(*podInfo)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

func vaNodeIndex(o any) ([]string, error) {
	va, ok := o.(*storagev1.VolumeAttachment)
	if !ok {
		return nil, nil
	}
	return []string{va.Spec.NodeName}, nil
}

func takeoverPhaseIndex(o any) ([]string, error) {
	t, ok := o.(*v1alpha1.Takeover)
	if !ok {
		return nil, nil
	}
	return []string{string(t.Status.Phase)}, nil
}

func takeoverNodeIndex(o any) ([]string, error) {
	t, ok := o.(*v1alpha1.Takeover)
	if !ok {
		return nil, nil
	}
	return []string{t.Spec.NodeName}, nil
}

func (c *Controller) cachedNode(name string) *corev1.Node {
	o, ok, _ := c.nodes.GetStore().GetByKey(name)
	if !ok {
		return nil
	}
	return o.(*corev1.Node)
}

func (c *Controller) cachedLease(name string) *coordinationv1.Lease {
	o, ok, _ := c.leases.GetStore().GetByKey(release.NodeLeaseNamespace + "/" + name)
	if !ok {
		return nil
	}
	return o.(*coordinationv1.Lease)
}

func (c *Controller) cachedVAs(node string) []*storagev1.VolumeAttachment {
	objs, _ := c.vas.GetIndexer().ByIndex(byNode, node)
	out := make([]*storagev1.VolumeAttachment, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*storagev1.VolumeAttachment))
	}
	return out
}

// cachedVANames returns the names of the node's cached VolumeAttachments,
// sorted.
func (c *Controller) cachedVANames(node string) []string {
	vas := c.cachedVAs(node)
	names := make([]string, 0, len(vas))
	for _, va := range vas {
		names = append(names, va.Name)
	}
	sort.Strings(names)
	return names
}

// openTakeover returns the cached open Takeover of a node, or nil.
func (c *Controller) openTakeover(node string) *v1alpha1.Takeover {
	objs, _ := c.takeovers.GetIndexer().ByIndex(byNode, node)
	items := make([]*v1alpha1.Takeover, 0, len(objs))
	for _, o := range objs {
		items = append(items, o.(*v1alpha1.Takeover))
	}
	return v1alpha1.OpenTakeover(items)
}
