package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

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

// StatusList is the document `status -o json|yaml` prints.
type StatusList struct {
	Time  time.Time    `json:"time"`
	Nodes []NodeStatus `json:"nodes"`
}

// NodeDetail is the document `status NODE -o json|yaml` prints.
type NodeDetail struct {
	Time      time.Time           `json:"time"`
	Node      NodeStatus          `json:"node"`
	Takeovers []v1alpha1.Takeover `json:"takeovers"`
}

// nodeStatuses computes the rows of `status` from a snapshot, sorted by
// node name.
func nodeStatuses(s snapshot) []NodeStatus {
	leases := map[string]*coordinationv1.Lease{}
	for i := range s.Leases {
		leases[s.Leases[i].Name] = &s.Leases[i]
	}
	claims := rwoClaims(s.Claims)
	pods := map[string][]StatefulPod{}
	for i := range s.Pods {
		p := &s.Pods[i]
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
	takeovers := map[string][]v1alpha1.Takeover{}
	for _, t := range s.Takeovers {
		takeovers[t.Spec.NodeName] = append(takeovers[t.Spec.NodeName], t)
	}

	out := make([]NodeStatus, 0, len(s.Nodes))
	for i := range s.Nodes {
		n := &s.Nodes[i]
		ns := NodeStatus{
			Name:            n.Name,
			Ready:           string(kubeutil.NodeReadyStatus(n)),
			Cordoned:        n.Spec.Unschedulable,
			OutOfService:    release.HasTaint(n),
			PlannedTakeover: n.Annotations[PlannedTakeoverAnnotation],
			StatefulPods:    pods[n.Name],
		}
		if ns.StatefulPods == nil {
			ns.StatefulPods = []StatefulPod{}
		}
		sort.Slice(ns.StatefulPods, func(i, j int) bool {
			a, b := ns.StatefulPods[i], ns.StatefulPods[j]
			return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
		})
		if l := leases[n.Name]; l != nil && l.Spec.RenewTime != nil {
			ns.LeaseRenewTime = l.Spec.RenewTime.DeepCopy()
			age := s.Now.Sub(l.Spec.RenewTime.Time).Seconds()
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
		tks := takeovers[n.Name]
		sortTakeovers(tks)
		if len(tks) > 0 {
			ns.LastTakeoverName = tks[len(tks)-1].Name
		}
		if t := v1alpha1.OpenTakeoverOf(tks); t != nil {
			since := t.CreationTimestamp.Time
			if d := t.PhaseTime(v1alpha1.PhaseDetected); d != nil {
				since = d.Time
			}
			ns.Takeover = &TakeoverSummary{
				Name: t.Name, Phase: string(t.Status.Phase), Reason: t.Status.Reason,
				Since: since.UTC(), ElapsedSeconds: s.Now.Sub(since).Seconds(),
			}
		}
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// printStatusTable writes the node table; wide adds the internal IP, every
// taint, the names of the stateful pods and the last Takeover's name.
func printStatusTable(w io.Writer, rows []NodeStatus, wide bool) error {
	tw := newTable(w)
	head := "NAME\tREADY\tLEASE-AGE\tFENCE\tSCHEDULING\tAT-RISK\tTAKEOVER"
	if wide {
		head += "\tINTERNAL-IP\tTAINTS\tSTATEFUL-PODS\tLAST-TAKEOVER"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s", r.Name, orDash(r.Ready), r.leaseAge(), orDash(r.FenceReady),
			r.scheduling(), len(r.StatefulPods), r.takeover())
		if wide {
			taints := "-"
			if len(r.Taints) > 0 {
				taints = strings.Join(r.Taints, ",")
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", orDash(r.InternalIP), taints, r.podNames(), orDash(r.LastTakeoverName))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printNodeDetail writes one node's state, its stateful pods and the
// timeline of each of its Takeovers, oldest first.
func printNodeDetail(w io.Writer, now time.Time, ns NodeStatus, tks []v1alpha1.Takeover) error {
	lease := "no Lease"
	if ns.LeaseAgeSeconds != nil {
		lease = "Lease renewed " + ns.leaseAge() + " ago"
	}
	fmt.Fprintf(w, "Node %s: Ready=%s, %s, %s, FenceReady=%s\n",
		ns.Name, orDash(ns.Ready), lease, ns.scheduling(), orDash(ns.FenceReady))
	if len(ns.StatefulPods) == 0 {
		fmt.Fprintln(w, "No stateful pods on the node.")
	} else {
		fmt.Fprintf(w, "Stateful pods on the node (%d):\n", len(ns.StatefulPods))
		tw := newTable(w)
		for _, p := range ns.StatefulPods {
			fmt.Fprintf(tw, "  %s/%s\t%s\t%s\n", p.Namespace, p.Name, orDash(p.Owner), p.Why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(tks) == 0 {
		fmt.Fprintf(w, "\nNo Takeovers for node %s.\n", ns.Name)
		return nil
	}
	for i := range tks {
		fmt.Fprintln(w)
		if err := printTimeline(w, now, &tks[i]); err != nil {
			return err
		}
	}
	return nil
}

// printTimeline writes one Takeover: its phases with their times relative
// to detection, and the pods it moved.
func printTimeline(w io.Writer, now time.Time, t *v1alpha1.Takeover) error {
	start := t.CreationTimestamp.Time
	if d := t.PhaseTime(v1alpha1.PhaseDetected); d != nil {
		start = d.Time
	}
	dry := ""
	if t.Spec.DryRun {
		dry = ", dry run"
	}
	if t.Status.Phase.Closed() {
		end := now
		if r := t.PhaseTime(v1alpha1.PhaseRecovered); r != nil {
			end = r.Time
		}
		fmt.Fprintf(w, "Takeover %s: closed (%s) %s after detection; strategy %s, fence %s%s\n", t.Name, t.Status.Phase,
			age(end.Sub(start)), orDash(string(t.Spec.Strategy)), orDash(t.Spec.FenceProvider), dry)
	} else {
		fmt.Fprintf(w, "Takeover %s: open, phase %s, %s since detection; strategy %s, fence %s%s\n", t.Name, orDash(string(t.Status.Phase)),
			age(now.Sub(start)), orDash(string(t.Spec.Strategy)), orDash(t.Spec.FenceProvider), dry)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  PHASE\tTIME\tT+\tREASON\tMESSAGE")
	for _, p := range t.Status.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Phase, p.Time.UTC().Format(time.RFC3339), offset(p.Time.Sub(start)), orDash(p.Reason), oneLine(p.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(t.Status.MovedPods) > 0 {
		tw = newTable(w)
		fmt.Fprintln(tw, "  MOVED POD\tOWNER\tREPLACEMENT\tNODE\tREADY")
		for _, m := range t.Status.MovedPods {
			owner := "-"
			if m.OwnerKind != "" {
				owner = m.OwnerKind + "/" + m.OwnerName
			}
			ready := "-"
			if m.ReadyTime != nil {
				ready = offset(m.ReadyTime.Sub(start))
			}
			fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\n", m.Namespace, m.Name, owner, orDash(m.ReplacementName), orDash(m.ReplacementNode), ready)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if t.Status.FenceOutput != "" {
		fmt.Fprintf(w, "  fence output: %s\n", oneLine(t.Status.FenceOutput))
	}
	return nil
}

// offset formats a time since the start of something: "+12.5s", "+2m3.0s".
func offset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	if d < time.Minute {
		return sign + strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	m := int(d / time.Minute)
	return fmt.Sprintf("%s%dm%04.1fs", sign, m, (d - time.Duration(m)*time.Minute).Seconds())
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

// printDocument writes v as JSON or YAML.
func printDocument(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
