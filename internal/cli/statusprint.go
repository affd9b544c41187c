package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// printStatusTable writes the node table (noHeaders: without its header
// line); wide adds the internal IP, every
// taint, the names of the stateful pods and the last Takeover's name.
func printStatusTable(w io.Writer, rows []NodeStatus, wide, noHeaders bool) error {
	tw := newTable(w)
	head := "NAME\tREADY\tLEASE-AGE\tFENCE\tSCHEDULING\tAT-RISK\tTAKEOVER"
	if wide {
		head += "\tINTERNAL-IP\tTAINTS\tSTATEFUL-PODS\tLAST-TAKEOVER"
	}
	if !noHeaders {
		fmt.Fprintln(tw, head)
	}
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

// phaseLabel is a timeline entry's phase; for a step entered more than
// once, with its count and when it was last entered: "Failed ×1000 (last
// 12:03:04)". TIME is when it was first entered.
func phaseLabel(phase string, times int32, last time.Time) string {
	if times <= 1 {
		return phase
	}
	s := fmt.Sprintf("%s ×%d", phase, times)
	if !last.IsZero() {
		s += " (last " + last.UTC().Format(time.TimeOnly) + ")"
	}
	return s
}

// lastTime is a repeated timeline entry's last time, or the zero time.
func lastTime(p v1alpha1.PhaseTransition) time.Time {
	if p.LastTime == nil {
		return time.Time{}
	}
	return p.LastTime.Time
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", phaseLabel(string(p.Phase), p.Times(), lastTime(p)), p.Time.UTC().Format(time.RFC3339), offset(p.Time.Sub(start)), orDash(p.Reason), oneLine(p.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := t.Status.TimelineDropped; n > 0 {
		fmt.Fprintf(w, "  (the timeline keeps at most 32 entries: %d older ones of repeated steps were dropped)\n", n)
	}
	if len(t.Status.MovedPods) > 0 {
		tw = newTable(w)
		fmt.Fprintln(tw, "  MOVED POD\tOWNER\tREPLACEMENT\tNODE\tSCHEDULED\tREADY")
		for _, m := range t.Status.MovedPods {
			owner := "-"
			if m.OwnerKind != "" {
				owner = m.OwnerKind + "/" + m.OwnerName
			}
			fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\t%s\n", m.Namespace, m.Name, owner, orDash(m.ReplacementName), orDash(m.ReplacementNode),
				offsetOf(m.ScheduledTime, start), offsetOf(m.ReadyTime, start))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if line := downtimeLine(t, start); line != "" {
		fmt.Fprintln(w, line)
	}
	if t.Status.FenceOutput != "" {
		fmt.Fprintf(w, "  fence output: %s\n", oneLine(t.Status.FenceOutput))
	}
	return nil
}

// downtimeLine is the Takeover's downtime breakdown (docs/design.md,
// "where the seconds go"): the one recorded at WorkloadsReady, or the parts
// so far of an incident not there yet; "" when nothing is recorded.
func downtimeLine(t *v1alpha1.Takeover, start time.Time) string {
	d, label := t.Status.Downtime, "downtime"
	if d == nil {
		d, label = v1alpha1.ComputeDowntime(t), "downtime so far"
	}
	if d == nil {
		return ""
	}
	line := "  " + label + ": " + d.Summary()
	if hb := t.Status.LastHeartbeatSeen; hb != nil {
		line += "; last heartbeat seen at T" + offset(hb.Sub(start))
	}
	return line
}

func offsetOf(at *metav1.MicroTime, start time.Time) string {
	if at == nil {
		return "-"
	}
	return offset(at.Sub(start))
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
