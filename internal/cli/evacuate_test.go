package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// evacuationCluster is two Ready nodes and mysql-0 on w1, with the Eviction
// API (an eviction deletes the pod, once the command watches the pods) and
// no Takeovers.
func evacuationCluster(t *testing.T) (*clients, *fake.Clientset, corev1.Pod) {
	t.Helper()
	w1 := node("w1", "10.0.0.1", corev1.ConditionTrue)
	w2 := node("w2", "10.0.0.2", corev1.ConditionTrue)
	old := ownedPod("db", "mysql-0", "w1", "StatefulSet", "mysql")
	kube, watching := fakePods(&old)
	for _, n := range []*corev1.Node{&w1, &w2} {
		if err := kube.Tracker().Add(n); err != nil {
			t.Fatal(err)
		}
	}
	kube.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1"}}},
		{GroupVersion: "policy/v1", APIResources: []metav1.APIResource{{Name: "poddisruptionbudgets", Kind: "PodDisruptionBudget"}}},
	}
	kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		<-watching
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		return true, nil, kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tk := crfake.NewClientBuilder().WithScheme(scheme).WithIndex(&v1alpha1.Takeover{}, "spec.nodeName", func(o client.Object) []string {
		return []string{o.(*v1alpha1.Takeover).Spec.NodeName}
	}).Build()
	return &clients{kube: kube, tk: tk}, kube, old
}

func evacuateOpts() *evacuateOptions {
	return &evacuateOptions{timeout: time.Minute, ignoreDaemonSets: true, gracePeriod: -1}
}

// recreate stands in for the StatefulSet controller: once mysql-0 is gone
// it creates its replacement, Ready on w2.
func recreate(t *testing.T, kube *fake.Clientset, old corev1.Pod) {
	ctx := context.Background()
	for {
		if _, err := kube.CoreV1().Pods("db").Get(ctx, old.Name, metav1.GetOptions{}); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	repl := old.DeepCopy()
	repl.UID, repl.ResourceVersion = "uid-mysql-0-new", ""
	if _, err := kube.CoreV1().Pods("db").Create(ctx, readyPod(*repl, "w2", true), metav1.CreateOptions{}); err != nil {
		t.Error(err)
	}
}

func TestEvacuateMovesStatefulPods(t *testing.T) {
	c, kube, old := evacuationCluster(t)
	go recreate(t, kube, old)
	var out bytes.Buffer
	clk := testingclock.NewFakeClock(loopT0)
	err := newEvacuation(IOStreams{Out: &out, ErrOut: &out}, kube, clk, "w1", evacuateOpts()).run(context.Background(), c)
	if err != nil {
		t.Fatalf("evacuate: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Evacuation of node w1: 1 pod to evict, 1 of them stateful\n",
		"+0.0s  cordoned w1\n", "+0.0s  evicted db/mysql-0\n", "+0.0s  drained w1\n",
		"+0.0s  db/mysql-0 scheduled on w2\n", "+0.0s  db/mysql-0 Ready on w2 (StatefulSet/mysql)\n",
		"PodReady         12:00:00.000   +0.0s   db/mysql-0 on w2\n",
		"Evacuation of w1 done in 0s: 1 stateful pod Ready on other nodes. The node stays cordoned; bring it back with: liberator readmit w1\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	n, _ := kube.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if !n.Spec.Unschedulable || n.Annotations[PlannedTakeoverAnnotation] != "2026-03-14T12:00:00Z" {
		t.Errorf("w1 after the evacuation: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
}

// Nothing recreates mysql-0: at --timeout on the evacuation's clock the
// command fails, says what it waited for, and uncordons the node.
func TestEvacuateTimesOutAndUncordons(t *testing.T) {
	c, kube, _ := evacuationCluster(t)
	var out bytes.Buffer
	clk := testingclock.NewFakeClock(loopT0)
	done := make(chan error, 1)
	go func() {
		done <- newEvacuation(IOStreams{Out: &out, ErrOut: &out}, kube, clk, "w1", evacuateOpts()).run(context.Background(), c)
	}()
	waiters(t, clk, 1)
	clk.Step(time.Minute)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the evacuation did not time out")
	}
	if err == nil || !strings.HasPrefix(err.Error(), "evacuation of w1 timed out after 1m0s: not Ready on another node: db/mysql-0 (") ||
		!strings.HasSuffix(err.Error(), "; node w1 uncordoned") {
		t.Errorf("evacuate: %v", err)
	}
	n, _ := kube.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if n.Spec.Unschedulable || n.Annotations[PlannedTakeoverAnnotation] != "" {
		t.Errorf("w1 after a failed evacuation: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
}
