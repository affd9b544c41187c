package bed

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// MountedAnnotation is set to "true" by the bed on a pod with
// PersistentVolumeClaim volumes once all of them are attached to its node;
// kwok starts such a pod only then, as a kubelet would.
const MountedAnnotation = "bed.liberator.test/volumes-mounted"

// volumeSim plays the parts of the storage stack that kwok does not:
//
//   - the external-attacher of CSIDriver: it marks the driver's
//     VolumeAttachments attached, but only for nodes that are up, and adds no
//     finalizer, so a deleted VolumeAttachment is gone at once;
//   - the kubelet's volume manager on each node that is up: it reports the
//     node's volumes in use in status.volumesInUse (the attach-detach
//     controller does not detach those until the node is reported unmounted,
//     force-detached after 6 minutes, or tainted out-of-service), and lets a
//     pod start (MountedAnnotation) only once its volumes are attached.
//
// A node that is off or cut off does nothing, so what it last reported stays.
type volumeSim struct {
	client     kubernetes.Interface
	attachable func(node string) bool
	logf       func(string, ...any)

	vas, pods, nodes, pvcs, pvs cache.SharedIndexInformer

	attachQ workqueue.TypedRateLimitingInterface[string] // VolumeAttachment names
	nodeQ   workqueue.TypedRateLimitingInterface[string] // node names
}

const podsByNode = "node"

func newVolumeSim(client kubernetes.Interface, attachable func(string) bool, logf func(string, ...any)) *volumeSim {
	limiter := func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 5*time.Second)
	}
	return &volumeSim{
		client:     client,
		attachable: attachable,
		logf:       logf,
		attachQ:    workqueue.NewTypedRateLimitingQueue(limiter()),
		nodeQ:      workqueue.NewTypedRateLimitingQueue(limiter()),
	}
}

// start runs the informers and workers until ctx is done.
func (s *volumeSim) start(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(s.client, 0)
	s.vas = f.Storage().V1().VolumeAttachments().Informer()
	s.pods = f.Core().V1().Pods().Informer()
	s.nodes = f.Core().V1().Nodes().Informer()
	s.pvcs = f.Core().V1().PersistentVolumeClaims().Informer()
	s.pvs = f.Core().V1().PersistentVolumes().Informer()

	if err := s.pods.AddIndexers(cache.Indexers{podsByNode: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return err
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
	}{
		{s.vas, func(obj any) {
			if va, ok := obj.(*storagev1.VolumeAttachment); ok && va.Spec.Attacher == CSIDriver {
				s.attachQ.Add(va.Name)
			}
		}},
		{s.pods, func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				s.nodeQ.Add(p.Spec.NodeName)
			}
		}},
		{s.nodes, func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				s.nodeQ.Add(n.Name)
			}
		}},
		// A claim getting bound or a volume appearing can let pods start.
		{s.pvcs, func(any) { s.allNodes() }},
		{s.pvs, func(any) { s.allNodes() }},
	}
	for _, h := range handlers {
		fn := h.fn
		if _, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    fn,
			UpdateFunc: func(_, obj any) { fn(obj) },
			DeleteFunc: fn,
		}); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	for _, h := range handlers {
		if !cache.WaitForCacheSync(ctx.Done(), h.inf.HasSynced) {
			return fmt.Errorf("informers did not sync")
		}
	}
	go func() {
		<-ctx.Done()
		s.attachQ.ShutDown()
		s.nodeQ.ShutDown()
	}()
	go runQueue(ctx, s.attachQ, s.syncAttachment, s.logf)
	go runQueue(ctx, s.nodeQ, s.syncNode, s.logf)
	return nil
}

func (s *volumeSim) allNodes() {
	for _, name := range s.nodes.GetStore().ListKeys() {
		s.nodeQ.Add(name)
	}
}

// nodeUp re-examines a node that came back and its VolumeAttachments.
func (s *volumeSim) nodeUp(node string) {
	s.nodeQ.Add(node)
	for _, obj := range s.vas.GetStore().List() {
		if va, ok := obj.(*storagev1.VolumeAttachment); ok && va.Spec.NodeName == node && va.Spec.Attacher == CSIDriver {
			s.attachQ.Add(va.Name)
		}
	}
}

func runQueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error, logf func(string, ...any)) {
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := sync(ctx, key); err != nil {
			if ctx.Err() == nil {
				logf("bed: volume simulation: %s: %v", key, err)
			}
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

func (s *volumeSim) syncAttachment(ctx context.Context, name string) error {
	obj, exists, err := s.vas.GetStore().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	va := obj.(*storagev1.VolumeAttachment)
	if va.DeletionTimestamp != nil || va.Status.Attached || !s.attachable(va.Spec.NodeName) {
		return nil
	}
	va = va.DeepCopy()
	va.Status.Attached = true
	va.Status.AttachError = nil
	if _, err := s.client.StorageV1().VolumeAttachments().UpdateStatus(ctx, va, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark attached: %w", err)
	}
	volume := "?"
	if va.Spec.Source.PersistentVolumeName != nil {
		volume = *va.Spec.Source.PersistentVolumeName
	}
	s.logf("bed: attacher: %s attached to %s", volume, va.Spec.NodeName)
	return nil
}

func (s *volumeSim) syncNode(ctx context.Context, name string) error {
	if !s.attachable(name) {
		return nil
	}
	obj, exists, err := s.nodes.GetStore().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	node := obj.(*corev1.Node)
	attached := map[corev1.UniqueVolumeName]bool{}
	for _, v := range node.Status.VolumesAttached {
		attached[v.Name] = true
	}
	pods, err := s.pods.GetIndexer().ByIndex(podsByNode, name)
	if err != nil {
		return err
	}
	inUse := map[corev1.UniqueVolumeName]bool{}
	var start []*corev1.Pod
	for _, obj := range pods {
		p := obj.(*corev1.Pod)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		vols, resolved := s.attachableVolumes(p)
		ready := resolved
		for _, v := range vols {
			inUse[v] = true
			ready = ready && attached[v]
		}
		if ready && p.DeletionTimestamp == nil && p.Annotations[MountedAnnotation] != "true" && hasClaims(p) {
			start = append(start, p)
		}
	}
	want := slices.Sorted(maps.Keys(inUse))
	if !slices.Equal(want, node.Status.VolumesInUse) {
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"volumesInUse": want}})
		if err != nil {
			return err
		}
		if _, err := s.client.CoreV1().Nodes().PatchStatus(ctx, name, patch); err != nil {
			return fmt.Errorf("report volumes in use: %w", err)
		}
	}
	mounted := []byte(`{"metadata":{"annotations":{"` + MountedAnnotation + `":"true"}}}`)
	for _, p := range start {
		_, err := s.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, mounted, metav1.PatchOptions{})
		if ignoreNotFound(err) != nil {
			return fmt.Errorf("start pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

func hasClaims(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil })
}

// attachableVolumes returns the unique names of the pod's attachable
// volumes, and whether every claim of the pod
// is bound to a known volume.
func (s *volumeSim) attachableVolumes(p *corev1.Pod) ([]corev1.UniqueVolumeName, bool) {
	var names []corev1.UniqueVolumeName
	resolved := true
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		obj, ok, _ := s.pvcs.GetStore().GetByKey(p.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
		if !ok {
			resolved = false
			continue
		}
		pvc := obj.(*corev1.PersistentVolumeClaim)
		if pvc.Spec.VolumeName == "" {
			resolved = false
			continue
		}
		obj, ok, _ = s.pvs.GetStore().GetByKey(pvc.Spec.VolumeName)
		if !ok {
			resolved = false
			continue
		}
		if name := uniqueVolumeName(obj.(*corev1.PersistentVolume)); name != "" {
			names = append(names, name)
		}
	}
	return names, resolved
}

// uniqueVolumeName is the name the attach-detach controller and the kubelet
// give an attachable volume (CSI or iSCSI), or "" for other volumes.
func uniqueVolumeName(pv *corev1.PersistentVolume) corev1.UniqueVolumeName {
	switch src := pv.Spec.PersistentVolumeSource; {
	case src.CSI != nil:
		return corev1.UniqueVolumeName("kubernetes.io/csi/" + src.CSI.Driver + "^" + src.CSI.VolumeHandle)
	case src.ISCSI != nil:
		return corev1.UniqueVolumeName(fmt.Sprintf("kubernetes.io/iscsi/%s:%s:%d", src.ISCSI.TargetPortal, src.ISCSI.IQN, src.ISCSI.Lun))
	}
	return ""
}
