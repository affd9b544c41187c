package controller

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/metrics"
)

const (
	benchNodes = 5000
	benchPods  = 100000
)

// benchNode and benchPod are shaped like what a kubelet and the controllers
// write: managedFields, labels, images, containers with resources and probes.
func benchNode(i int) *corev1.Node {
	name := fmt.Sprintf("worker-%05d", i)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: strconv.Itoa(i),
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-" + strconv.Itoa(i%3)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: "Update", APIVersion: "v1",
				FieldsV1: metav1.NewFieldsV1(strings.Repeat(`{"f:status":{"f:conditions":{}}}`, 20))}}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse}},
			NodeInfo: corev1.NodeSystemInfo{BootID: "boot-" + name, KubeletVersion: "v1.36.3", OSImage: "Debian GNU/Linux 12"},
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")},
		},
	}
	for j := range 30 {
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{fmt.Sprintf("registry.example/app-%d@sha256:%064d", j, j)}, SizeBytes: 1 << 26})
	}
	return n
}

func benchPod(i int) *corev1.Pod {
	node := fmt.Sprintf("worker-%05d", i%benchNodes)
	name := fmt.Sprintf("app-%d-%05d", i%500, i)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns-" + strconv.Itoa(i%50), UID: types.UID("uid-" + name), ResourceVersion: strconv.Itoa(i),
			Labels:      map[string]string{"app": "app-" + strconv.Itoa(i%500), "pod-template-hash": "5d8f9c7b6d", "tier": "backend"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z", "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "app-" + strconv.Itoa(i%500),
				UID: types.UID("owner-" + strconv.Itoa(i%500)), Controller: ptr.To(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: "Update", APIVersion: "v1",
				FieldsV1: metav1.NewFieldsV1(strings.Repeat(`{"f:spec":{"f:containers":{}}}`, 30))}}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.2.3",
				Env:            []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "PORT", Value: "8080"}},
				Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}, {Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.example/app:1.2.3", ImageID: "sha256:0123456789abcdef", ContainerID: "containerd://0123456789abcdef"}}},
	}
}

func benchLease(i int, renew time.Time) *coordinationv1.Lease {
	name := fmt.Sprintf("worker-%05d", i)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-node-lease", ResourceVersion: strconv.Itoa(i)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &metav1.MicroTime{Time: renew}}}
}

// benchController builds a controller whose informer stores hold a
// 5,000-node, 100,000-pod cluster, put through the same transform the
// informers apply. With transform false, objects are stored whole (the
// baseline).
func benchController(tb testing.TB, transform bool) *Controller {
	tb.Helper()
	cfg := config.Default()
	cfg.Fencing.Classes = []config.FenceClass{{Name: "all", Provider: "wait", Wait: &config.WaitFence{SafeTime: config.Duration{Duration: 10 * time.Second}}, Timeout: config.Duration{Duration: time.Second}}}
	c, err := New(Options{Config: cfg, Kube: kubefake.NewClientset(), Client: fake.NewClientBuilder().Build(), Clock: clock.RealClock{}, Metrics: metrics.New()})
	if err != nil {
		tb.Fatal(err)
	}
	add := func(s cache.Store, o any) {
		if transform {
			o, _ = slim(o)
		}
		if err := s.Add(o); err != nil {
			tb.Fatal(err)
		}
	}
	now := time.Now()
	for i := range benchNodes {
		add(c.nodes.GetIndexer(), benchNode(i))
		add(c.leases.GetIndexer(), benchLease(i, now))
		c.health.observeNode(fmt.Sprintf("worker-%05d", i), true)
		c.health.observeLease(fmt.Sprintf("worker-%05d", i), now.String(), cfg.UnhealthyAfter.Duration)
	}
	for i := range benchPods {
		add(c.pods.GetIndexer(), benchPod(i))
	}
	return c
}

// memMB returns the heap in use and the resident set after a collection
// that also returns freed pages to the OS (the steady state of a long
// running controller).
func memMB() (heap, rss float64) {
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	heap = float64(m.HeapInuse) / (1 << 20)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss = kb / 1024
			}
		}
	}
	return heap, rss
}

// BenchmarkDecision measures one event at cluster scale: a node's Lease is
// renewed, the handler records it, and the node is reconciled from the
// caches (read node, lease age, open incident, decide). Run it with
// -benchtime 2000x or more.
func BenchmarkDecision(b *testing.B) {
	c := benchController(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := i % benchNodes
		c.onLease(benchLease(n, time.Now()), c.conf().UnhealthyAfter.Duration)
		if _, err := c.reconcile(ctx, fmt.Sprintf("worker-%05d", n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan measures the once-a-second sweep over every node's
// heartbeat age, eligibility and the storm tally.
func BenchmarkScan(b *testing.B) {
	c := benchController(b, true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.scan()
		for c.queue.Len() > 0 {
			k, _ := c.queue.Get()
			c.queue.Done(k)
		}
	}
}

// BenchmarkCacheMemory reports the heap and resident memory of the
// informer caches for the cluster, with the transform (as the controller
// runs) and without it (the baseline: objects stored whole). Run it alone
// (-bench CacheMemory) so other benchmarks' garbage does not count.
func BenchmarkCacheMemory(b *testing.B) {
	for _, tc := range []struct {
		name      string
		transform bool
	}{{"slim", true}, {"baseline-whole-objects", false}} {
		b.Run(tc.name, func(b *testing.B) {
			// One cluster is built whatever b.N is: the figures are sizes,
			// not rates.
			heap0, rss0 := memMB()
			c := benchController(b, tc.transform)
			heap, rss := memMB()
			b.ReportMetric(heap-heap0, "cache-heap-MB")
			b.ReportMetric(heap, "heap-MB")
			b.ReportMetric(rss, "rss-MB")
			b.ReportMetric(rss-rss0, "rss-delta-MB")
			runtime.KeepAlive(c)
		})
	}
}
