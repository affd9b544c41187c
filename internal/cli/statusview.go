package cli

import (
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/kubeutil"
	"github.com/liberator-dev/liberator/internal/release"
)

// FenceReadyCondition is the node condition that says whether the node's
// fence provider is reachable and configured; `status` shows it when set.
const FenceReadyCondition corev1.NodeConditionType = "FenceReady"

// PlannedTakeoverAnnotation marks a node cordoned by `liberator evacuate`
// (the value is when it began). A node cordoned without it was cordoned by
// someone else. The key keeps the command's earlier name, "planned
// takeover", so that nodes cordoned by an earlier version stay recognised.
const PlannedTakeoverAnnotation = "liberator.dev/planned-takeover"

// snapshot is what `status` reads from the cluster, at one instant.
type snapshot struct {
	Now       time.Time
	Nodes     []corev1.Node
	Leases    []coordinationv1.Lease
	Pods      []corev1.Pod
	Claims    []corev1.PersistentVolumeClaim
	Takeovers []v1alpha1.Takeover
}

// NodeStatus is one node as `liberator status` shows it.
type NodeStatus struct {
	Name  string `json:"name"`
	Ready string `json:"ready"`
	// LeaseRenewTime is the node's Lease renewTime as its kubelet wrote it;
	// LeaseAgeSeconds is this machine's clock minus it, for display only.
	LeaseRenewTime  *metav1.MicroTime `json:"leaseRenewTime,omitempty"`
	LeaseAgeSeconds *float64          `json:"leaseAgeSeconds,omitempty"`
	// FenceReady is the status of the FenceReady node condition, if set.
	FenceReady       string           `json:"fenceReady,omitempty"`
	FenceReason      string           `json:"fenceReason,omitempty"`
	Cordoned         bool             `json:"cordoned"`
	OutOfService     bool             `json:"outOfService"`
	PlannedTakeover  string           `json:"plannedTakeover,omitempty"`
	Taints           []string         `json:"taints,omitempty"`
	InternalIP       string           `json:"internalIP,omitempty"`
	StatefulPods     []StatefulPod    `json:"statefulPods"`
	Takeover         *TakeoverSummary `json:"takeover,omitempty"`
	LastTakeoverName string           `json:"lastTakeover,omitempty"`
}

// StatefulPod is a pod at risk on the node.
type StatefulPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Owner     string `json:"owner,omitempty"`
	Why       string `json:"why"`
}

// TakeoverSummary is a node's open Takeover.
type TakeoverSummary struct {
	Name           string    `json:"name"`
	Phase          string    `json:"phase"`
	Reason         string    `json:"reason,omitempty"`
	Since          time.Time `json:"since"`
	ElapsedSeconds float64   `json:"elapsedSeconds"`
}

// nodeStatuses computes the rows of `status` from a snapshot, sorted by
// node name.
func nodeStatuses(s snapshot) []NodeStatus {
	leases := map[string]*coordinationv1.Lease{}
	for i := range s.Leases {
		leases[s.Leases[i].Name] = &s.Leases[i]
	}
	pods := statefulPodsByNode(s.Pods, rwoClaims(s.Claims))
	takeovers := map[string][]v1alpha1.Takeover{}
	for _, t := range s.Takeovers {
		takeovers[t.Spec.NodeName] = append(takeovers[t.Spec.NodeName], t)
	}
	out := make([]NodeStatus, 0, len(s.Nodes))
	for i := range s.Nodes {
		n := &s.Nodes[i]
		out = append(out, nodeStatus(s.Now, n, leases[n.Name], pods[n.Name], takeovers[n.Name]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// statefulPodsByNode maps each node's name to its stateful pods, sorted.
func statefulPodsByNode(all []corev1.Pod, claims map[string]bool) map[string][]StatefulPod {
	pods := map[string][]StatefulPod{}
	for i := range all {
		p := &all[i]
		if p.Spec.NodeName == "" {
			continue
		}
		why := atRisk(p, claims)
		if why == "" {
			continue
		}
		sp := StatefulPod{Namespace: p.Namespace, Name: p.Name, Why: why}
		if o := metav1.GetControllerOf(p); o != nil {
			sp.Owner = o.Kind + "/" + o.Name
		}
		pods[p.Spec.NodeName] = append(pods[p.Spec.NodeName], sp)
	}
	for _, l := range pods {
		sort.Slice(l, func(i, j int) bool { return l[i].Namespace+"/"+l[i].Name < l[j].Namespace+"/"+l[j].Name })
	}
	return pods
}

// nodeStatus is one node's row: lease is its Lease (nil when it has none),
// pods its stateful pods and tks its Takeovers.
func nodeStatus(now time.Time, n *corev1.Node, lease *coordinationv1.Lease, pods []StatefulPod, tks []v1alpha1.Takeover) NodeStatus {
	ns := NodeStatus{
		Name:            n.Name,
		Ready:           string(kubeutil.NodeReadyStatus(n)),
		Cordoned:        n.Spec.Unschedulable,
		OutOfService:    release.HasTaint(n),
		PlannedTakeover: n.Annotations[PlannedTakeoverAnnotation],
		StatefulPods:    pods,
	}
	if ns.StatefulPods == nil {
		ns.StatefulPods = []StatefulPod{}
	}
	if lease != nil && lease.Spec.RenewTime != nil {
		ns.LeaseRenewTime = lease.Spec.RenewTime.DeepCopy()
		age := now.Sub(lease.Spec.RenewTime.Time).Seconds()
		ns.LeaseAgeSeconds = &age
	}
	for _, c := range n.Status.Conditions {
		if c.Type == FenceReadyCondition {
			ns.FenceReady, ns.FenceReason = string(c.Status), c.Reason
		}
	}
	for _, t := range n.Spec.Taints {
		ns.Taints = append(ns.Taints, taintString(t))
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && ns.InternalIP == "" {
			ns.InternalIP = a.Address
		}
	}
	sortTakeovers(tks)
	if len(tks) > 0 {
		ns.LastTakeoverName = tks[len(tks)-1].Name
	}
	ns.Takeover = takeoverSummary(now, tks)
	return ns
}

// takeoverSummary summarizes the open Takeover among tks, nil when none
// is open.
func takeoverSummary(now time.Time, tks []v1alpha1.Takeover) *TakeoverSummary {
	t := v1alpha1.OpenTakeoverOf(tks)
	if t == nil {
		return nil
	}
	since := t.CreationTimestamp.Time
	if d := t.PhaseTime(v1alpha1.PhaseDetected); d != nil {
		since = d.Time
	}
	return &TakeoverSummary{
		Name: t.Name, Phase: string(t.Status.Phase), Reason: t.Status.Reason,
		Since: since.UTC(), ElapsedSeconds: now.Sub(since).Seconds(),
	}
}

func taintString(t corev1.Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + string(t.Effect)
}

// age formats a duration the way kubectl shows ages ("45s", "3m10s").
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return duration.HumanDuration(d)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (ns NodeStatus) scheduling() string {
	var parts []string
	if ns.Cordoned {
		if ns.PlannedTakeover != "" {
			parts = append(parts, "cordoned(takeover)")
		} else {
			parts = append(parts, "cordoned")
		}
	}
	if ns.OutOfService {
		parts = append(parts, "out-of-service")
	}
	if len(parts) == 0 {
		return "schedulable"
	}
	return strings.Join(parts, ",")
}

func (ns NodeStatus) leaseAge() string {
	if ns.LeaseAgeSeconds == nil {
		return "-"
	}
	return age(time.Duration(*ns.LeaseAgeSeconds * float64(time.Second)))
}

func (ns NodeStatus) takeover() string {
	if ns.Takeover == nil {
		return "-"
	}
	return ns.Takeover.Phase + " " + age(time.Duration(ns.Takeover.ElapsedSeconds*float64(time.Second)))
}

func (ns NodeStatus) podNames() string {
	if len(ns.StatefulPods) == 0 {
		return "-"
	}
	names := make([]string, len(ns.StatefulPods))
	for i, p := range ns.StatefulPods {
		names[i] = p.Namespace + "/" + p.Name
	}
	return strings.Join(names, ",")
}
