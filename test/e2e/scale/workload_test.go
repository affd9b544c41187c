//go:build e2e

package scale

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// Namespace holds every workload of the benchmark.
const Namespace = "scale"

// Labels of the benchmark's pods.
const (
	kindLabel = "scale.liberator.test/kind"
	stateful  = "stateful"
	stateless = "stateless"
)

// plan is the benchmark's workload mix: a fifth of the pods in StatefulSets
// of stsReplicas (every other one with a ReadWriteOnce claim per pod),
// created and scheduled by the controller manager and the scheduler; the
// rest in ReplicaSets of up to rsReplicas whose pods the benchmark creates
// already bound to nodes (round robin) and the ReplicaSet then adopts: the
// scheduler on this machine binds only about 15 pods per second.
type plan struct {
	statefulSets, claimed int // claimed: the first `claimed` StatefulSets have claims
	replicaSets           []int32
}

const (
	stsReplicas = 5
	rsReplicas  = 20
)

func newPlan(pods int) plan {
	var p plan
	p.statefulSets = max(1, pods/5/stsReplicas)
	p.claimed = (p.statefulSets + 1) / 2
	rest := pods - p.statefulSets*stsReplicas
	for rest > 0 {
		n := min(rest, rsReplicas)
		p.replicaSets = append(p.replicaSets, int32(n))
		rest -= n
	}
	return p
}

func (p plan) statefulPods() int { return p.statefulSets * stsReplicas }
func (p plan) claims() int       { return p.claimed * stsReplicas }
func (p plan) pods() int {
	n := p.statefulPods()
	for _, d := range p.replicaSets {
		n += int(d)
	}
	return n
}

func (p plan) String() string {
	return fmt.Sprintf("%d StatefulSets of %d (%d pods, %d with a RWO claim), %d ReplicaSets (%d pre-bound pods)",
		p.statefulSets, stsReplicas, p.statefulPods(), p.claims(), len(p.replicaSets), p.pods()-p.statefulPods())
}

// create makes the namespace, the claims' volumes, the StatefulSets, the
// stateless pods bound to nodes and their ReplicaSets, 16 requests at a
// time.
func (p plan) create(ctx context.Context, c *bed.Cluster, kube kubernetes.Interface, nodes []string, logf func(string, ...any)) error {
	if err := c.EnsureStorage(ctx); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	var jobs []func() error
	for i := range p.claimed {
		for k := range stsReplicas {
			name := fmt.Sprintf("pv-db-%d-%d", i, k)
			claim := fmt.Sprintf("data-db-%d-%d", i, k)
			jobs = append(jobs, func() error {
				_, err := kube.CoreV1().PersistentVolumes().Create(ctx, volume(name, claim), metav1.CreateOptions{})
				return err
			})
		}
	}
	for i := range p.statefulSets {
		jobs = append(jobs, func() error {
			_, err := kube.AppsV1().StatefulSets(Namespace).Create(ctx, statefulSet(i, i < p.claimed), metav1.CreateOptions{})
			return err
		})
	}
	next := 0
	for i, n := range p.replicaSets {
		for k := range n {
			node := nodes[next%len(nodes)]
			next++
			jobs = append(jobs, func() error {
				_, err := kube.CoreV1().Pods(Namespace).Create(ctx, boundPod(i, int(k), node), metav1.CreateOptions{})
				return err
			})
		}
	}
	logf("creating %d volumes, %d StatefulSets, %d pods bound to %d nodes", p.claims(), p.statefulSets, p.pods()-p.statefulPods(), len(nodes))
	if err := runAll(jobs, 16); err != nil {
		return err
	}
	// The pods exist: each ReplicaSet adopts its own instead of creating
	// more.
	jobs = nil
	for i, n := range p.replicaSets {
		jobs = append(jobs, func() error {
			_, err := kube.AppsV1().ReplicaSets(Namespace).Create(ctx, replicaSet(i, n), metav1.CreateOptions{})
			return err
		})
	}
	logf("creating %d ReplicaSets", len(p.replicaSets))
	return runAll(jobs, 16)
}

// runAll runs the jobs, n at a time, and returns the first error.
func runAll(jobs []func() error, n int) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, n)
	for _, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := job(); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// waitReady waits until the workloads report every replica Ready, printing
// progress every 10 s.
func (p plan) waitReady(ctx context.Context, kube kubernetes.Interface, timeout time.Duration, logf func(string, ...any)) error {
	want := p.pods()
	last := time.Time{}
	ready := 0
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := readyReplicas(ctx, kube)
		if err != nil {
			return false, nil
		}
		ready = n
		if time.Since(last) > 10*time.Second {
			logf("workloads: %d of %d pods Ready", n, want)
			last = time.Now()
		}
		return n >= want, nil
	})
	if err != nil {
		return fmt.Errorf("workloads: %d of %d pods Ready: %w", ready, want, err)
	}
	return nil
}

func readyReplicas(ctx context.Context, kube kubernetes.Interface) (int, error) {
	n := 0
	sts, err := kube.AppsV1().StatefulSets(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	for _, s := range sts.Items {
		n += int(s.Status.ReadyReplicas)
	}
	rss, err := kube.AppsV1().ReplicaSets(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	for _, r := range rss.Items {
		n += int(r.Status.ReadyReplicas)
	}
	return n, nil
}

func podTemplate(app, kind string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app, kindLabel: kind}},
		Spec: corev1.PodSpec{
			// The control-plane node is tainted NoSchedule; the rest are kwok's.
			NodeSelector: map[string]string{"type": "kwok"},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.k8s.io/pause:3.10",
			}},
		},
	}
}

func statefulSet(i int, claimed bool) *appsv1.StatefulSet {
	name := fmt.Sprintf("db-%d", i)
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            new(int32(stsReplicas)),
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			ServiceName:         name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template:            podTemplate(name, stateful),
		},
	}
	if claimed {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: new(bed.StorageClass),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	return s
}

func replicaSet(i int, replicas int32) *appsv1.ReplicaSet {
	name := fmt.Sprintf("web-%d", i)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, stateless),
		},
	}
}

// boundPod is the k-th pod of ReplicaSet i, created on node.
func boundPod(i, k int, node string) *corev1.Pod {
	name := fmt.Sprintf("web-%d", i)
	t := podTemplate(name, stateless)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, k), Labels: t.Labels},
		Spec:       t.Spec,
	}
	p.Spec.NodeName = node
	return p
}

// volume is a pre-provisioned ReadWriteOnce CSI volume of the bed's
// simulated driver reserved for the claim (as bed.CreateVolume makes them).
func volume(name, claim string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              bed.StorageClass,
			VolumeMode:                    new(corev1.PersistentVolumeFilesystem),
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: Namespace, Name: claim},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: bed.CSIDriver, VolumeHandle: name, FSType: "ext4"},
			},
		},
	}
}
