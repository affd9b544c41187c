package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// DrillReport is what a drill measured. Times of the Takeover's phases are
// the controller's timestamps as recorded in its timeline (to the microsecond);
// "observed" times are when the drill saw them, on this machine's clock.
// Every *Seconds field counts from TriggeredAt, the moment the trigger (the
// fence call or the simulation command) returned.
type DrillReport struct {
	Node           string    `json:"node"`
	Method         string    `json:"method"`
	Trigger        string    `json:"trigger"`
	TriggerStart   time.Time `json:"triggerStart"`
	TriggeredAt    time.Time `json:"triggeredAt"`
	TriggerSeconds float64   `json:"triggerSeconds"`
	FinishedAt     time.Time `json:"finishedAt"`
	Takeover       string    `json:"takeover,omitempty"`
	Strategy       string    `json:"strategy,omitempty"`
	FenceProvider  string    `json:"fenceProvider,omitempty"`

	Phases []DrillPhase `json:"phases"`
	// The milestones, from the Takeover's timeline.
	DetectedSeconds       *float64 `json:"detectedSeconds,omitempty"`
	FencedSeconds         *float64 `json:"fencedSeconds,omitempty"`
	ReleasedSeconds       *float64 `json:"releasedSeconds,omitempty"`
	WorkloadsReadySeconds *float64 `json:"workloadsReadySeconds,omitempty"`
	// AllPodsReadySeconds is when the drill saw the last stateful pod Ready
	// on another node.
	AllPodsReadySeconds *float64 `json:"allPodsReadySeconds,omitempty"`

	Pods  []DrillPod   `json:"pods"`
	Probe *ProbeReport `json:"probe,omitempty"`

	// Complete is true when the Takeover reached WorkloadsReady and every
	// stateful pod was seen Ready on another node (and the probe, if any,
	// answered again).
	Complete bool   `json:"complete"`
	Problem  string `json:"problem,omitempty"`
}

// DrillPhase is one entry of the Takeover's timeline.
type DrillPhase struct {
	Phase               string    `json:"phase"`
	Reason              string    `json:"reason,omitempty"`
	Message             string    `json:"message,omitempty"`
	Time                time.Time `json:"time"`
	SinceTriggerSeconds float64   `json:"sinceTriggerSeconds"`
	ObservedSeconds     *float64  `json:"observedSeconds,omitempty"`
	// Count and LastTime are the timeline entry's: a step entered Count
	// times (when more than once), last at LastTime; Time is the first.
	Count    int32     `json:"count,omitempty"`
	LastTime time.Time `json:"lastTime,omitzero"`
}

// DrillPod is one stateful pod of the node.
type DrillPod struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Owner       string `json:"owner,omitempty"`
	Why         string `json:"why"`
	From        string `json:"from"`
	To          string `json:"to,omitempty"`
	Replacement string `json:"replacement,omitempty"`
	// ReadyTime and ReadySeconds are the Takeover's record (movedPods
	// readyTime); ObservedReadySeconds is when the drill saw it Ready.
	ReadyTime            *time.Time `json:"readyTime,omitempty"`
	ReadySeconds         *float64   `json:"readySeconds,omitempty"`
	ObservedReadySeconds *float64   `json:"observedReadySeconds,omitempty"`
	Last                 string     `json:"last,omitempty"`
}

// ProbeReport is what the TCP probe saw: the client-visible downtime runs
// from the first refused or timed-out connection after the trigger to the
// first successful one after the last failure.
type ProbeReport struct {
	Address         string     `json:"address"`
	IntervalMillis  int64      `json:"intervalMillis"`
	Attempts        int        `json:"attempts"`
	Failures        int        `json:"failures"`
	FirstFailure    *time.Time `json:"firstFailure,omitempty"`
	Restored        *time.Time `json:"restored,omitempty"`
	DowntimeSeconds *float64   `json:"downtimeSeconds,omitempty"`
	// DownBeforeTrigger is true when the probe already failed before the
	// trigger: the measurement then says little.
	DownBeforeTrigger bool `json:"downBeforeTrigger,omitempty"`
}

// drillObservation is everything a drill saw, the input of its report.
type drillObservation struct {
	node, method, trigger string
	triggerStart          time.Time
	triggered             time.Time
	finished              time.Time
	takeover              *v1alpha1.Takeover
	// seen maps an index of the Takeover's timeline to when the drill saw
	// that entry.
	seen     map[int]time.Time
	pods     []*movingPod
	probe    []probeSample
	probeCfg *probeConfig
	problem  string
}

func secondsSince(t, since time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	s := t.Sub(since).Seconds()
	return &s
}

// buildDrillReport turns what a drill saw into its report. It is pure.
func buildDrillReport(ob drillObservation) DrillReport {
	r := DrillReport{
		Node: ob.node, Method: ob.method, Trigger: ob.trigger,
		TriggerStart: ob.triggerStart.UTC(), TriggeredAt: ob.triggered.UTC(), FinishedAt: ob.finished.UTC(),
		TriggerSeconds: ob.triggered.Sub(ob.triggerStart).Seconds(),
		Phases:         []DrillPhase{}, Pods: []DrillPod{},
		Problem: ob.problem,
	}
	t0 := ob.triggered
	ready := map[string]v1alpha1.MovedPod{}
	workloadsReady := false
	if t := ob.takeover; t != nil {
		r.Takeover, r.Strategy, r.FenceProvider = t.Name, string(t.Spec.Strategy), t.Spec.FenceProvider
		for i, p := range t.Status.Timeline {
			dp := DrillPhase{Phase: string(p.Phase), Reason: p.Reason, Message: p.Message, Time: p.Time.Time, SinceTriggerSeconds: p.Time.Sub(t0).Seconds(),
				Count: p.Count, LastTime: lastTime(p)}
			if at, ok := ob.seen[i]; ok {
				dp.ObservedSeconds = secondsSince(at, t0)
			}
			r.Phases = append(r.Phases, dp)
		}
		milestone := func(p v1alpha1.Phase) *float64 {
			if pt := t.PhaseTime(p); pt != nil {
				return secondsSince(pt.Time, t0)
			}
			return nil
		}
		r.DetectedSeconds = milestone(v1alpha1.PhaseDetected)
		r.FencedSeconds = milestone(v1alpha1.PhaseFenced)
		r.ReleasedSeconds = milestone(v1alpha1.PhaseReleased)
		r.WorkloadsReadySeconds = milestone(v1alpha1.PhaseWorkloadsReady)
		workloadsReady = r.WorkloadsReadySeconds != nil
		for _, m := range t.Status.MovedPods {
			ready[m.Namespace+"/"+m.Name] = m
		}
	}
	allReady := true
	var last time.Time
	for _, m := range ob.pods {
		dp := DrillPod{Namespace: m.Namespace, Name: m.Name, Owner: m.OwnerKind + "/" + m.OwnerName, Why: m.Risk,
			From: m.From, To: m.Node, Replacement: m.Replacement, Last: m.Last}
		if m.OwnerKind == "" {
			dp.Owner = ""
		}
		if mp, ok := ready[m.key()]; ok && mp.ReadyTime != nil {
			rt := mp.ReadyTime.Time
			dp.ReadyTime = &rt
			dp.ReadySeconds = secondsSince(rt, t0)
			if dp.To == "" {
				dp.To = mp.ReplacementNode
			}
		}
		if !m.Ready.IsZero() {
			dp.ObservedReadySeconds = secondsSince(m.Ready, t0)
			if m.Ready.After(last) {
				last = m.Ready
			}
			dp.Last = ""
		} else if m.Recreated() {
			allReady = false
		}
		r.Pods = append(r.Pods, dp)
	}
	if allReady && len(ob.pods) > 0 {
		r.AllPodsReadySeconds = secondsSince(last, t0)
	}
	probeOK := true
	if ob.probeCfg != nil {
		pr := summarizeProbe(ob.probeCfg.address, ob.probeCfg.interval, ob.probe, ob.triggerStart)
		r.Probe = &pr
		probeOK = pr.FirstFailure == nil || pr.Restored != nil
	}
	r.Complete = ob.problem == "" && workloadsReady && allReady && probeOK
	return r
}

// printDrillReport writes the report for people.
func printDrillReport(w io.Writer, r DrillReport) error {
	fmt.Fprintf(w, "\nDrill report for node %s (%s: %s)\n", r.Node, r.Method, r.Trigger)
	fmt.Fprintf(w, "  triggered at %s (the trigger took %.1fs); times below count from then\n", r.TriggeredAt.Format("2006-01-02T15:04:05.000Z07:00"), r.TriggerSeconds)
	if r.Takeover == "" {
		fmt.Fprintln(w, "  no Takeover was opened for the node")
	} else {
		fmt.Fprintf(w, "  Takeover %s, strategy %s, fence %s\n", r.Takeover, orDash(r.Strategy), orDash(r.FenceProvider))
		tw := newTable(w)
		fmt.Fprintln(tw, "  PHASE\tTAKEOVER TIME\tSINCE TRIGGER\tSEEN BY DRILL\tREASON")
		for _, p := range r.Phases {
			seen := "-"
			if p.ObservedSeconds != nil {
				seen = offset(seconds(*p.ObservedSeconds))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", phaseLabel(p.Phase, p.Count, p.LastTime), p.Time.UTC().Format(time.RFC3339), offset(seconds(p.SinceTriggerSeconds)), seen, orDash(p.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Pods) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "  STATEFUL POD\tFROM\tTO\tREADY (TAKEOVER)\tSEEN READY")
		for _, p := range r.Pods {
			rec, seen := "-", "-"
			if p.ReadySeconds != nil {
				rec = offset(seconds(*p.ReadySeconds))
			}
			if p.ObservedReadySeconds != nil {
				seen = offset(seconds(*p.ObservedReadySeconds))
			} else if p.Last != "" {
				seen = "not yet: " + p.Last
			}
			fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.From, orDash(p.To), rec, seen)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(w, "  the node ran no stateful pods")
	}
	if p := r.Probe; p != nil {
		switch {
		case p.FirstFailure == nil:
			fmt.Fprintf(w, "  probe %s: no client-visible downtime (%d probes every %dms, none failed)\n", p.Address, p.Attempts, p.IntervalMillis)
		case p.DowntimeSeconds == nil:
			fmt.Fprintf(w, "  probe %s: down since %s, not restored (%d of %d probes failed)\n", p.Address, offset(p.FirstFailure.Sub(r.TriggeredAt)), p.Failures, p.Attempts)
		default:
			fmt.Fprintf(w, "  probe %s: client-visible downtime %.1fs (first failure %s, answering again %s; %d of %d probes every %dms failed)\n",
				p.Address, *p.DowntimeSeconds, offset(p.FirstFailure.Sub(r.TriggeredAt)), offset(p.Restored.Sub(r.TriggeredAt)), p.Failures, p.Attempts, p.IntervalMillis)
		}
		if p.DownBeforeTrigger {
			fmt.Fprintln(w, "  warning: the probe already failed before the trigger")
		}
	}
	sum := func(label string, v *float64) string {
		if v == nil {
			return label + " -"
		}
		return fmt.Sprintf("%s %.1fs", label, *v)
	}
	fmt.Fprintf(w, "  summary: %s, %s, %s, %s, %s\n", sum("detected", r.DetectedSeconds), sum("fenced", r.FencedSeconds),
		sum("released", r.ReleasedSeconds), sum("workloads ready", r.WorkloadsReadySeconds), sum("all stateful pods seen Ready", r.AllPodsReadySeconds))
	if r.Problem != "" {
		fmt.Fprintf(w, "  incomplete: %s\n", r.Problem)
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// report writes the report, and the JSON and HTML files when asked; an incomplete
// drill is an error.
func (d *drillRun) report() error {
	ob := &d.ob
	if ob.problem != "" {
		var left []string
		if ob.takeover == nil {
			left = append(left, "no Takeover was opened (is the controller running?)")
		} else if ob.takeover.PhaseTime(v1alpha1.PhaseWorkloadsReady) == nil {
			left = append(left, "Takeover in phase "+string(ob.takeover.Status.Phase))
		}
		for _, m := range d.tr.waiting() {
			left = append(left, m.key()+" not Ready elsewhere ("+m.Last+")")
		}
		if len(left) > 0 {
			ob.problem += ": " + strings.Join(left, "; ")
		}
	}
	if d.pr != nil {
		ob.probe = d.pr.snapshot()
	}
	rep := buildDrillReport(*ob)
	if err := printDrillReport(d.s.Out, rep); err != nil {
		return err
	}
	if err := writeReportJSON(d.o.reportJSON, rep); err != nil {
		return err
	}
	if err := writeReportHTML(d.o.reportHTML, rep, ob.takeover); err != nil {
		return err
	}
	if !rep.Complete {
		if rep.Problem == "" {
			rep.Problem = "the takeover did not complete"
		}
		return goalNotMet(fmt.Errorf("drill of %s incomplete: %s", d.node, rep.Problem))
	}
	return nil
}

// writeReportJSON writes the report as JSON to path, if one is given.
func writeReportJSON(path string, rep DrillReport) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

// drillPicture is the picture of the drill's Takeover (see
// takeoverPicture) with what the drill saw on this machine's clock: the
// moment the trigger returned, the probe's client-visible downtime and
// when each stateful pod was seen Ready elsewhere. The axis grows to hold
// them; its zero stays the Takeover's.
func drillPicture(r DrillReport, t *v1alpha1.Takeover) picture {
	p := takeoverPicture(t, r.FinishedAt)
	p.Title = fmt.Sprintf("Drill of node %s: Takeover %s", r.Node, t.Name)
	widen := func(at time.Time) {
		if at.IsZero() {
			return
		}
		if at.Before(p.Start) {
			p.Start = at
		}
		if at.After(p.End) {
			p.End = at
		}
	}
	widen(r.TriggeredAt)
	p.Lines = append(p.Lines, picLine{At: r.TriggeredAt, Label: "trigger"})
	var rows []picRow
	if pr := r.Probe; pr != nil && pr.FirstFailure != nil {
		widen(*pr.FirstFailure)
		row := picRow{Label: "probe " + pr.Address, Tooltip: fmt.Sprintf("probe %s: %d of %d connections every %dms failed", pr.Address, pr.Failures, pr.Attempts, pr.IntervalMillis)}
		bar := picBar{From: *pr.FirstFailure, Colour: colourProbe, Tooltip: row.Tooltip}
		if pr.Restored != nil {
			widen(*pr.Restored)
			bar.To = *pr.Restored
			bar.Text = "client-visible downtime " + secondsText(pr.Restored.Sub(*pr.FirstFailure))
			bar.Short = secondsText(pr.Restored.Sub(*pr.FirstFailure))
		} else {
			bar.To, bar.Faint, bar.Text = r.FinishedAt, true, "not answering at the end"
			widen(r.FinishedAt)
		}
		row.Bars = append(row.Bars, bar)
		rows = append(rows, row)
	}
	for _, pod := range r.Pods {
		if pod.ObservedReadySeconds == nil {
			continue
		}
		at := r.TriggeredAt.Add(seconds(*pod.ObservedReadySeconds))
		widen(at)
		label := pod.Namespace + "/" + pod.Name + " seen Ready"
		rows = append(rows, picRow{Label: label, Tooltip: label + " on " + orDash(pod.To),
			Marks: []picMark{{At: at, Colour: colourMarker, Text: "T" + offset(at.Sub(p.Origin)), Tooltip: label}}})
	}
	if len(rows) > 0 {
		p.Sections = append(p.Sections, picSection{Heading: "seen by the drill (this machine's clock)", Rows: rows})
	}
	p.Legend = append(p.Legend, picLegend{Colour: colourProbe, Text: "probe: client-visible downtime"})
	return p
}

// writeDrillHTML writes the report as a page: the picture of the drill's
// Takeover, its tables, and what the drill measured.
func writeDrillHTML(out io.Writer, r DrillReport, t *v1alpha1.Takeover) error {
	var b strings.Builder
	htmlPage(&b, "liberator drill "+r.Node)
	fmt.Fprintf(&b, "<h1>Drill of node %s</h1>\n<p>%s: %s; triggered at %s (the trigger took %.1fs), finished at %s</p>\n", esc(r.Node), esc(r.Method), esc(r.Trigger),
		r.TriggeredAt.UTC().Format("2006-01-02T15:04:05.000Z"), r.TriggerSeconds, r.FinishedAt.UTC().Format("2006-01-02T15:04:05.000Z"))
	if t == nil {
		b.WriteString("<p>No Takeover was opened for the node.</p>\n")
	} else {
		takeoverHTML(&b, drillPicture(r, t), t)
	}
	var text strings.Builder
	if err := printDrillReport(&text, r); err != nil {
		return err
	}
	fmt.Fprintf(&b, "<h2>Report</h2>\n<pre>%s</pre>\n", esc(strings.TrimLeft(text.String(), "\n")))
	b.WriteString(htmlEnd)
	_, err := io.WriteString(out, b.String())
	return err
}

// writeReportHTML writes the report's page to path, if one is given.
func writeReportHTML(path string, rep DrillReport, t *v1alpha1.Takeover) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	if err := writeDrillHTML(&b, rep, t); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}
