package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// What evacuate needs around the drain: the cordon and its mark, the
// claims that make a pod stateful, the PodDisruptionBudgets that refuse
// evictions, and the dry run's plan.

// setCordon cordons the node (marking it as cordoned by an evacuation that
// began at since) or uncordons it (removing that mark).
func setCordon(ctx context.Context, kube kubernetes.Interface, node string, on bool, since time.Time) error {
	var mark any
	if on {
		mark = since.UTC().Format(time.RFC3339)
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{PlannedTakeoverAnnotation: mark}},
		"spec":     map[string]any{"unschedulable": on},
	})
	if err != nil {
		return err
	}
	_, err = kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// claimsOf reads the claims of the namespaces the pods are in.
func claimsOf(ctx context.Context, kube kubernetes.Interface, pods []corev1.Pod) (map[string]bool, error) {
	var all []corev1.PersistentVolumeClaim
	seen := map[string]bool{}
	for _, p := range pods {
		if seen[p.Namespace] {
			continue
		}
		seen[p.Namespace] = true
		l, err := kube.CoreV1().PersistentVolumeClaims(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, apiError("list PersistentVolumeClaims in "+p.Namespace, err)
		}
		all = append(all, l.Items...)
	}
	return rwoClaims(all), nil
}

// evictionErrors receives the drain helper's error output and notes the
// pods whose eviction a PodDisruptionBudget refused.
type evictionErrors struct {
	mu        sync.Mutex
	blocked   map[string]bool
	order     []string
	onBlocked func(namespace, name string)
	last      string
}

var evictionPod = regexp.MustCompile(`pods?/"([^"]+)" -n "([^"]+)"`)

func (e *evictionErrors) Write(b []byte) (int, error) {
	e.mu.Lock()
	line := string(b)
	e.last = strings.TrimSpace(line)
	var ns, name string
	first := false
	if strings.Contains(line, "disruption budget") {
		if m := evictionPod.FindStringSubmatch(line); m != nil {
			name, ns = m[1], m[2]
			key := ns + "/" + name
			if e.blocked == nil {
				e.blocked = map[string]bool{}
			}
			if !e.blocked[key] {
				e.blocked[key] = true
				e.order = append(e.order, key)
				first = true
			}
		}
	}
	cb := e.onBlocked
	e.mu.Unlock()
	if first && cb != nil {
		cb(ns, name)
	}
	return len(b), nil
}

func (e *evictionErrors) blockedPods() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.order...)
}

// pdbsFor returns the PodDisruptionBudgets whose selector matches the pod.
func pdbsFor(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) ([]policyv1.PodDisruptionBudget, error) {
	l, err := kube.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []policyv1.PodDisruptionBudget
	for _, b := range l.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, b)
		}
	}
	return out, nil
}

// pdbText describes a budget in a few words.
func pdbText(b *policyv1.PodDisruptionBudget) string {
	rule := ""
	switch {
	case b.Spec.MinAvailable != nil:
		rule = "minAvailable " + b.Spec.MinAvailable.String()
	case b.Spec.MaxUnavailable != nil:
		rule = "maxUnavailable " + b.Spec.MaxUnavailable.String()
	}
	return fmt.Sprintf("PodDisruptionBudget %s/%s (%s, %d disruptions allowed)", b.Namespace, b.Name, rule, b.Status.DisruptionsAllowed)
}

// describePDBBlock names the budgets that refused the blocked pods'
// evictions.
func describePDBBlock(ctx context.Context, kube kubernetes.Interface, pods []corev1.Pod, blocked []string, timeout time.Duration) string {
	var parts []string
	for _, key := range blocked {
		var budgets []string
		for i := range pods {
			p := &pods[i]
			if p.Namespace+"/"+p.Name != key {
				continue
			}
			if bs, err := pdbsFor(ctx, kube, p); err == nil {
				for j := range bs {
					budgets = append(budgets, pdbText(&bs[j]))
				}
			}
		}
		if len(budgets) == 0 {
			budgets = []string{"a PodDisruptionBudget"}
		}
		parts = append(parts, fmt.Sprintf("%s for pod %s", strings.Join(budgets, " and "), key))
	}
	return fmt.Sprintf("%s (still refused after --timeout %s)", strings.Join(parts, "; "), timeout)
}

// printEvacuationPlan writes what an evacuation would do.
func printEvacuationPlan(ctx context.Context, w io.Writer, kube kubernetes.Interface, n *corev1.Node, pods []corev1.Pod, risk map[types.UID]string) error {
	fmt.Fprintf(w, "Evacuation of node %s (dry run: nothing is changed)\n", n.Name)
	if n.Spec.Unschedulable {
		fmt.Fprintf(w, "%s is already cordoned\n", n.Name)
	} else {
		fmt.Fprintf(w, "would cordon %s\n", n.Name)
	}
	if len(pods) == 0 {
		fmt.Fprintln(w, "no pods to evict")
		return nil
	}
	fmt.Fprintf(w, "would evict %s, then wait for the stateful ones to be Ready on another node:\n", plural(len(pods), "pod"))
	tw := newTable(w)
	fmt.Fprintln(tw, "  POD\tOWNER\tSTATEFUL\tDISRUPTION BUDGET")
	for i := range pods {
		p := &pods[i]
		owner := "-"
		if o := metav1.GetControllerOf(p); o != nil {
			owner = o.Kind + "/" + o.Name
		}
		budget := "-"
		bs, err := pdbsFor(ctx, kube, p)
		if err != nil {
			return apiError("list PodDisruptionBudgets in "+p.Namespace, err)
		}
		var texts []string
		for j := range bs {
			t := pdbText(&bs[j])
			if bs[j].Status.DisruptionsAllowed < 1 {
				t = "blocks now: " + t
			}
			texts = append(texts, t)
		}
		if len(texts) > 0 {
			budget = strings.Join(texts, "; ")
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\n", p.Namespace, p.Name, owner, orDash(risk[p.UID]), budget)
	}
	return tw.Flush()
}

// plural is "1 pod", "2 pods".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
