package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/internal/pause"
)

// Event reasons on the pause ConfigMap.
const (
	EventPaused  = "LiberatorPaused"
	EventResumed = "LiberatorResumed"
)

// newPauseInformer watches the one pause ConfigMap (liberator pause) in
// the controller's namespace, by name: the controller reads no other
// ConfigMap.
func newPauseInformer(kube kubernetes.Interface, ns string) (informers.SharedInformerFactory, cache.SharedIndexInformer) {
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + pause.ConfigMapName }))
	return f, f.Core().V1().ConfigMaps().Informer()
}

func (c *Controller) addPauseHandlers() error {
	_, err := c.pauseInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.onPause(o, false) },
		UpdateFunc: func(_, o any) { c.onPause(o, false) },
		DeleteFunc: func(o any) { c.onPause(o, true) },
	})
	return err
}

// onPause takes a change of the pause ConfigMap: the pause in force, its
// metric, one log line and (on the leader) an event when it begins or
// ends, and every open incident looked at again at once (one held by the
// pause moves on when it ends; one about to be fenced is held when it
// begins).
func (c *Controller) onPause(o any, deleted bool) {
	cm, ok := tombstone(o).(*corev1.ConfigMap)
	if !ok || cm.Name != pause.ConfigMapName {
		return
	}
	var now *pause.State
	if !deleted {
		s := pause.Of(cm)
		now = &s
	}
	was := c.paused.Swap(now)
	switch {
	case now != nil && (was == nil || *was != *now):
		c.m.Paused.Set(1)
		c.log.Info("liberator paused "+now.Note()+"; no takeover is opened and no node is fenced until liberator resume; a node already fenced is still released",
			"by", now.By, "since", now.Since, "reason", now.Reason)
		if c.Leading() && was == nil {
			c.recorder.Event(pauseRef(cm), corev1.EventTypeNormal, EventPaused, "liberator paused "+now.Note()+"; no takeover is opened and no node is fenced until liberator resume")
		}
	case now == nil && was != nil:
		c.m.Paused.Set(0)
		c.log.Info("liberator resumed: the pause "+was.Note()+" ended; takeovers go on", "pausedFor", c.clock.Since(was.Since).Round(time.Second).String())
		if c.Leading() {
			c.recorder.Event(pauseRef(cm), corev1.EventTypeNormal, EventResumed, "liberator resumed: the pause "+was.Note()+" ended")
		}
	default:
		return
	}
	for _, o := range c.takeovers.GetStore().List() {
		if t := o.(*v1alpha1.Takeover); !t.Status.Phase.Closed() {
			c.queue.Add(t.Spec.NodeName)
		}
	}
}

func pauseRef(cm *corev1.ConfigMap) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: cm.Namespace, Name: cm.Name, UID: cm.UID}
}

// pauseNow is the pause in force as the cache shows it, nil when none.
func (c *Controller) pauseNow() *pause.State { return c.paused.Load() }

// noteOf is p's note for decide, "" when not paused.
func noteOf(p *pause.State) string {
	if p == nil {
		return ""
	}
	return p.Note()
}

// holdIfPausedLive re-reads the pause ConfigMap from the API server right
// before a fence attempt starts, so that once liberator pause has returned
// no new fence attempt starts, whatever the watch delivered yet. Paused, it
// holds the incident (Paused, ClusterPaused) and stop is true.
func (c *Controller) holdIfPausedLive(ctx context.Context, t *v1alpha1.Takeover) (after time.Duration, stop bool, err error) {
	cm, err := c.kube.CoreV1().ConfigMaps(c.secretNamespace()).Get(ctx, pause.ConfigMapName, metav1.GetOptions{})
	c.apiResult("getPause", err)
	switch {
	case apierrors.IsNotFound(err):
		return 0, false, nil
	case err != nil:
		return 0, true, fmt.Errorf("read the pause ConfigMap %s/%s before fencing: %w", c.secretNamespace(), pause.ConfigMapName, err)
	}
	after, err = c.pause(ctx, t, decide.PausedHold(pause.Of(cm).Note()))
	return after, true, err
}
