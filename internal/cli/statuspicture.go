package cli

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// The picture of an incident (`status NODE -o svg|html`, `drill
// --report-html`): a time axis from the node's last heartbeat seen to its
// workloads Ready (now, for an incident still under way), the downtime's
// parts as coloured bars, a row per timeline entry and a row per moved pod.
// The output depends only on its input: the same Takeover (and, for an
// open one, the same now) always gives the same bytes.

// The colours of the picture; the browser test looks for them in the
// screenshot.
const (
	colourDetection = "#8e44ad"
	colourFence     = "#e74c3c"
	colourRelease   = "#f39c12"
	colourSchedule  = "#3498db"
	colourStart     = "#27ae60"
	colourPodDown   = "#34495e"
	colourRetry     = "#e6a1a1"
	colourProbe     = "#16a085"
	colourMarker    = "#2c3e50"
	colourFailed    = "#c0392b"
	colourGrid      = "#e3e6e8"
	colourText      = "#222222"
	colourMuted     = "#6b7378"
)

// partColours maps each downtime part to its colour, in the order the parts
// happen.
var partColours = []struct{ name, colour string }{
	{"detection", colourDetection}, {"fence", colourFence}, {"release", colourRelease},
	{"schedule", colourSchedule}, {"start", colourStart},
}

// Geometry of the picture, in pixels.
const (
	picWidth    = 1100
	picLabelX   = 12  // row labels start here
	picPlotX0   = 250 // the time axis runs from here
	picPlotX1   = 1050
	picRowH     = 22
	picPartsH   = 30
	picCharW    = 6.6 // average width of a character at 12px, to fit labels
	picMaxLabel = 36  // row labels longer than this are cut (the whole one is the row's tooltip)
)

// picture is one incident drawn on a time axis.
type picture struct {
	// Title and Subtitle are the header's two lines.
	Title, Subtitle string
	// Start and End bound the axis. Origin is its zero, the instant the
	// ticks and the T+ labels count from (Start, unless something drawn
	// happened before it); OriginLabel says what it is.
	Start, End, Origin time.Time
	OriginLabel        string
	// Parts is the downtime lane.
	Parts []picBar
	// Sections are groups of rows under a heading.
	Sections []picSection
	// Lines are vertical markers across all rows (a drill's trigger).
	Lines []picLine
	// Legend lists the colours; PartLegend the parts with their seconds.
	Legend []picLegend
}

type picSection struct {
	Heading string
	Rows    []picRow
}

type picRow struct {
	Label, Tooltip string
	Bars           []picBar
	Marks          []picMark
}

// picBar is a span of time. Faint draws it lighter (a part still under
// way, a pod not Ready yet). Text goes inside when it fits, else after it.
type picBar struct {
	From, To time.Time
	Colour   string
	Faint    bool
	// Text is the label; Short replaces it when it does not fit.
	Text, Short string
	Tooltip     string
}

// picMark is an instant: a diamond (a phase entered) or a tick (a pod
// scheduled), with a label beside it.
type picMark struct {
	At      time.Time
	Colour  string
	Tick    bool
	Text    string
	Tooltip string
}

type picLine struct {
	At    time.Time
	Label string
}

type picLegend struct {
	Colour, Text string
	Tick, Mark   bool
	Faint        bool
}

// incidentInstants are the instants the downtime's parts run between (nil
// when not recorded): the same ones ComputeDowntime uses.
type incidentInstants struct {
	heartbeat, detected, fenced, released, scheduled, ready, workloadsReady *metav1.MicroTime
	allReady                                                                bool
}

func instantsOf(t *v1alpha1.Takeover) incidentInstants {
	in := incidentInstants{heartbeat: t.Status.LastHeartbeatSeen}
	tl := t.Status.Timeline
	start := -1
	for i := range tl {
		if tl[i].Phase == v1alpha1.PhaseDetected {
			start = i
		}
	}
	if start >= 0 {
		in.detected = &tl[start].Time
		for i := start + 1; i < len(tl); i++ {
			at := &tl[i].Time
			switch {
			case tl[i].Phase == v1alpha1.PhaseFenced && in.fenced == nil:
				in.fenced = at
			case tl[i].Phase == v1alpha1.PhaseReleased && in.released == nil:
				in.released = at
			case tl[i].Phase == v1alpha1.PhaseWorkloadsReady && in.workloadsReady == nil:
				in.workloadsReady = at
			}
		}
	}
	tracked := 0
	in.allReady = true
	for i := range t.Status.MovedPods {
		m := &t.Status.MovedPods[i]
		in.scheduled = laterOf(in.scheduled, m.ScheduledTime)
		in.ready = laterOf(in.ready, m.ReadyTime)
		if m.OwnerKind == "" {
			continue
		}
		tracked++
		if m.ReadyTime == nil {
			in.allReady = false
		}
	}
	in.allReady = in.allReady && tracked > 0
	return in
}

func laterOf(a, b *metav1.MicroTime) *metav1.MicroTime {
	if b == nil || (a != nil && !a.Before(b)) {
		return a
	}
	return b
}

// downtimeEnd is where the downtime ends: the last replacement Ready, or
// WorkloadsReady when not every one was recorded Ready; nil before then.
func (in incidentInstants) downtimeEnd() *metav1.MicroTime {
	if in.allReady {
		return in.ready
	}
	return in.workloadsReady
}

// entryEnd is the last time a timeline entry happened: for an entry that
// stands for several retries, the last of them.
func entryEnd(p *v1alpha1.PhaseTransition) time.Time {
	if n, last := entryRepeats(p); n > 1 && last != nil && last.After(p.Time.Time) {
		return last.Time
	}
	return p.Time.Time
}

// takeoverPicture draws t; now ends the axis of an incident still under
// way.
func takeoverPicture(t *v1alpha1.Takeover, now time.Time) picture {
	in := instantsOf(t)
	p := picture{}

	// The axis.
	switch {
	case in.heartbeat != nil:
		p.Start, p.OriginLabel = in.heartbeat.Time, "last heartbeat seen"
	case len(t.Status.Timeline) > 0:
		p.Start, p.OriginLabel = t.Status.Timeline[0].Time.Time, "first timeline entry"
	default:
		p.Start, p.OriginLabel = t.CreationTimestamp.Time, "creation"
	}
	p.Origin = p.Start
	closed := t.Status.Phase.Closed()
	end := in.downtimeEnd()
	switch {
	case end != nil:
		p.End = end.Time
	case closed && len(t.Status.Timeline) > 0:
		p.End = entryEnd(&t.Status.Timeline[len(t.Status.Timeline)-1])
	default:
		p.End = now
	}
	for i := range t.Status.MovedPods {
		if r := t.Status.MovedPods[i].ReadyTime; r != nil && r.After(p.End) {
			p.End = r.Time
		}
	}
	if p.End.Sub(p.Start) < time.Second {
		p.End = p.Start.Add(time.Second)
	}

	// The header.
	d, soFar := t.Status.Downtime, ""
	if d == nil {
		d = v1alpha1.ComputeDowntime(t)
		if !closed && end == nil {
			soFar = " so far"
		}
	}
	total := "-"
	if d != nil && d.Total != nil {
		total = secondsText(d.Total.Duration)
	} else if !closed && end == nil {
		total, soFar = secondsText(now.Sub(p.Origin)), " so far"
	}
	p.Title = fmt.Sprintf("Takeover %s", t.Name)
	state := "open, phase " + orDash(string(t.Status.Phase))
	if closed {
		state = "closed (" + string(t.Status.Phase) + ")"
	}
	dry := ""
	if t.Spec.DryRun {
		dry = " · dry run"
	}
	p.Subtitle = fmt.Sprintf("node %s · fence %s · strategy %s · downtime%s %s · %s%s", t.Spec.NodeName, orDash(t.Spec.FenceProvider),
		orDash(string(t.Spec.Strategy)), soFar, total, state, dry)

	// The downtime lane: each part between its two instants; an open
	// incident's part under way runs to now, faint.
	ends := []*metav1.MicroTime{in.heartbeat, in.detected, in.fenced, in.released, in.scheduled, in.ready}
	parts := d.Parts()
	for i, pc := range partColours {
		from, to := ends[i], ends[i+1]
		if from == nil {
			continue
		}
		text := "-"
		if parts[i].Duration != nil {
			text = parts[i].Seconds()
		}
		switch {
		case to != nil:
			if to.Before(from) {
				to = from
			}
			p.Parts = append(p.Parts, picBar{From: from.Time, To: to.Time, Colour: pc.colour, Text: pc.name + " " + text, Short: text,
				Tooltip: pc.name + " " + text})
		case !closed && end == nil && (i+2 >= len(ends) || ends[i+2] == nil):
			so := secondsText(now.Sub(from.Time))
			p.Parts = append(p.Parts, picBar{From: from.Time, To: now, Colour: pc.colour, Faint: true, Text: pc.name + " " + so + " so far", Short: so + " so far",
				Tooltip: pc.name + " under way, " + so + " so far"})
		}
	}
	for i, pc := range partColours {
		p.Legend = append(p.Legend, picLegend{Colour: pc.colour, Text: pc.name + " " + parts[i].Seconds()})
	}

	// The timeline.
	var rows []picRow
	for i := range t.Status.Timeline {
		e := &t.Status.Timeline[i]
		colour := colourMarker
		if e.Phase == v1alpha1.PhaseFailed || e.Phase == v1alpha1.PhasePaused {
			colour = colourFailed
		}
		label := string(e.Phase)
		if e.Reason != "" && e.Reason != string(e.Phase) {
			label += " · " + e.Reason
		}
		tip := label
		if m := oneLine(e.Message); m != "-" {
			tip += ": " + m
		}
		row := picRow{Label: label, Tooltip: tip}
		at := "T" + offset(e.Time.Sub(p.Origin))
		// Off the axis by more than a pixel or two: at its edge, with an
		// arrow (an entry written a few milliseconds after the last pod
		// Ready is on it).
		slack := p.End.Sub(p.Start) / 400
		switch {
		case e.Time.Time.After(p.End.Add(slack)):
			at = "→ " + at + " (after the axis)"
		case e.Time.Time.Before(p.Start.Add(-slack)):
			at = "← " + at + " (before the axis)"
		}
		if n, _ := entryRepeats(e); n > 1 {
			last := entryEnd(e)
			text := fmt.Sprintf("×%d, T%s to T%s", n, offset(e.Time.Sub(p.Origin)), offset(last.Sub(p.Origin)))
			row.Bars = append(row.Bars, picBar{From: e.Time.Time, To: last, Colour: colourRetry, Text: text, Tooltip: tip})
			row.Label = fmt.Sprintf("%s (×%d)", label, n)
		} else {
			row.Marks = append(row.Marks, picMark{At: e.Time.Time, Colour: colour, Text: at, Tooltip: tip})
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		heading := "timeline"
		if n := t.Status.TimelineDropped; n > 0 {
			heading += " (" + droppedText(n) + " dropped)"
		}
		p.Sections = append(p.Sections, picSection{Heading: heading, Rows: rows})
	}

	// The moved pods, each down from the node's last heartbeat to its
	// replacement Ready.
	rows = nil
	for i := range t.Status.MovedPods {
		m := &t.Status.MovedPods[i]
		from := p.Origin
		row := picRow{Label: m.Namespace + "/" + m.Name}
		row.Tooltip = row.Label
		if m.OwnerKind != "" {
			row.Tooltip += " (" + m.OwnerKind + "/" + m.OwnerName + ")"
		}
		bar := picBar{From: from, Colour: colourPodDown}
		switch {
		case m.ReadyTime != nil:
			bar.To = m.ReadyTime.Time
			bar.Text = "down " + secondsText(m.ReadyTime.Sub(from))
			if m.ReplacementNode != "" {
				bar.Text += ", Ready on " + m.ReplacementNode
			}
		case m.OwnerKind == "":
			bar.To, bar.Faint = p.End, true
			bar.Text = "no owner: not recreated"
		case closed || end != nil:
			bar.To, bar.Faint = p.End, true
			bar.Text = "no Ready replacement recorded"
		default:
			bar.To, bar.Faint = p.End, true
			bar.Text = "down " + secondsText(p.End.Sub(from)) + " so far, not Ready yet"
		}
		bar.Tooltip = row.Tooltip + ": " + bar.Text
		row.Bars = append(row.Bars, bar)
		if m.ScheduledTime != nil {
			row.Marks = append(row.Marks, picMark{At: m.ScheduledTime.Time, Colour: "#ffffff", Tick: true,
				Tooltip: "scheduled T" + offset(m.ScheduledTime.Sub(p.Origin))})
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		p.Sections = append(p.Sections, picSection{Heading: "moved pods", Rows: rows})
	}
	p.Legend = append(p.Legend,
		picLegend{Colour: colourPodDown, Text: "pod down (last heartbeat to replacement Ready)"},
		picLegend{Colour: colourPodDown, Tick: true, Text: "replacement scheduled"},
		picLegend{Colour: colourMarker, Mark: true, Text: "phase entered"},
		picLegend{Colour: colourRetry, Text: "retries (one entry, first to last)"},
	)
	return p
}

// x maps an instant to its abscissa, clamped to the axis.
func (p *picture) x(at time.Time) float64 {
	span := p.End.Sub(p.Start).Seconds()
	f := at.Sub(p.Start).Seconds() / span
	f = math.Max(0, math.Min(1, f))
	return picPlotX0 + f*(picPlotX1-picPlotX0)
}

// top is where the rows begin, under the header, the labels of the
// vertical lines and the ticks.
func (p *picture) top() int {
	if len(p.Lines) > 0 {
		return 86
	}
	return 70
}

// height is the picture's height in pixels.
func (p *picture) height() int {
	h := p.top() + 26 + picPartsH
	for _, s := range p.Sections {
		h += 24 + len(s.Rows)*picRowH
	}
	return h + 20 + 22*((len(p.Legend)+2)/3)
}

// tickStep chooses the axis' tick spacing: at most 10 ticks.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	} {
		if span/s <= 10 {
			return s
		}
	}
	return span / 10
}

// tickText is a tick's label: "0s", "0.5s", "45s", "1m30s", "2m", "1h",
// "-5s".
func tickText(d time.Duration) string {
	if d < 0 {
		return "-" + tickText(-d)
	}
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
	d = d.Round(time.Second)
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return b.String()
}

// secondsText is a duration in seconds with one decimal: "46.0s".
func secondsText(d time.Duration) string {
	return strconv.FormatFloat(max(d, 0).Seconds(), 'f', 1, 64) + "s"
}

// svgWriter collects the SVG's markup.
type svgWriter struct{ b strings.Builder }

func (w *svgWriter) f(format string, a ...any) { fmt.Fprintf(&w.b, format, a...) }

func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// text writes a text element; s is escaped.
func (w *svgWriter) text(x, y float64, s, attrs string) {
	w.f(`<text x="%s" y="%s"%s>%s</text>`+"\n", num(x), num(y), attrs, esc(s))
}

// svg draws the picture at vertical offset y0.
func (p *picture) svg(w *svgWriter, y0 int) {
	w.f(`<g transform="translate(0,%d)">`+"\n", y0)
	w.text(picLabelX, 22, p.Title, ` class="title"`)
	w.text(picLabelX, 42, p.Subtitle, ` class="sub"`)

	// The axis: ticks above, grid lines down through every row.
	top, bottom := float64(p.top()), float64(p.height()-20-22*((len(p.Legend)+2)/3))
	step := tickStep(p.End.Sub(p.Start))
	w.text(picLabelX, top-6, "since "+p.OriginLabel, ` class="muted"`)
	first := -(p.Origin.Sub(p.Start) / step) * step
	for d := first; !p.Origin.Add(d).After(p.End); d += step {
		x := p.x(p.Origin.Add(d))
		w.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`+"\n", num(x), num(top), num(x), num(bottom), colourGrid)
		w.text(x, top-6, tickText(d), ` class="tick"`)
	}
	y := top + 8

	// The downtime lane.
	w.text(picLabelX, y+picPartsH/2+4, "downtime", ` class="label"`)
	for _, b := range p.Parts {
		w.bar(p, b, y+3, picPartsH-6, true)
	}
	y += picPartsH

	for _, s := range p.Sections {
		y += 24
		w.text(picLabelX, y-6, s.Heading, ` class="heading"`)
		w.f(`<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#b8bec2"/>`+"\n", picLabelX, num(y-2), picPlotX1, num(y-2))
		for _, r := range s.Rows {
			w.row(p, r, y)
			y += picRowH
		}
	}
	for _, l := range p.Lines {
		x := p.x(l.At)
		w.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n", num(x), num(top), num(x), num(bottom), colourText)
		w.text(x, top-22, l.Label, ` class="tick"`)
	}

	// The legend.
	y = bottom + 22
	for i, l := range p.Legend {
		x := float64(picLabelX + (i%3)*360)
		ly := y + float64(i/3)*22
		switch {
		case l.Mark:
			w.diamond(x+8, ly-4, l.Colour)
		case l.Tick:
			w.f(`<rect x="%s" y="%s" width="16" height="12" fill="%s"/>`, num(x), num(ly-10), l.Colour)
			w.f(`<rect x="%s" y="%s" width="2" height="12" fill="#ffffff"/>`+"\n", num(x+7), num(ly-10))
		default:
			op := ""
			if l.Faint {
				op = ` fill-opacity="0.45"`
			}
			w.f(`<rect x="%s" y="%s" width="16" height="12" fill="%s"%s/>`+"\n", num(x), num(ly-10), l.Colour, op)
		}
		w.text(x+22, ly, l.Text, ` class="legend"`)
	}
	w.f("</g>\n")
}

// row draws one labelled row at y.
func (w *svgWriter) row(p *picture, r picRow, y float64) {
	label := r.Label
	if n := []rune(label); len(n) > picMaxLabel {
		label = string(n[:picMaxLabel-1]) + "…"
	}
	w.f("<g>")
	if r.Tooltip != "" {
		w.f("<title>%s</title>", esc(r.Tooltip))
	}
	w.text(picLabelX+8, y+picRowH/2+4, label, ` class="label"`)
	w.f("</g>\n")
	for _, b := range r.Bars {
		w.bar(p, b, y+4, picRowH-8, false)
	}
	for _, m := range r.Marks {
		x, cy := p.x(m.At), y+picRowH/2
		w.f("<g>")
		if m.Tooltip != "" {
			w.f("<title>%s</title>", esc(m.Tooltip))
		}
		if m.Tick {
			w.f(`<rect x="%s" y="%s" width="2" height="%d" fill="%s"/>`, num(x-1), num(y+4), picRowH-8, m.Colour)
		} else {
			w.diamond(x, cy, m.Colour)
		}
		w.f("</g>\n")
		if m.Text != "" {
			w.label(x+8, x-8, cy+4, m.Text, colourText)
		}
	}
}

// bar draws a span; a zero-length one is drawn 2px wide so that it shows.
func (w *svgWriter) bar(p *picture, b picBar, y float64, h int, inside bool) {
	x0, x1 := p.x(b.From), p.x(b.To)
	if x1-x0 < 2 {
		x1 = x0 + 2
	}
	op := ""
	if b.Faint {
		op = ` fill-opacity="0.45"`
	}
	w.f("<g>")
	if b.Tooltip != "" {
		w.f("<title>%s</title>", esc(b.Tooltip))
	}
	w.f(`<rect x="%s" y="%s" width="%s" height="%d" fill="%s"%s/>`, num(x0), num(y), num(x1-x0), h, b.Colour, op)
	w.f("</g>\n")
	if b.Text == "" {
		return
	}
	cy := y + float64(h)/2 + 4
	if b.Short != "" && textWidth(b.Text)+8 > x1-x0 {
		b.Text = b.Short
	}
	tw := textWidth(b.Text)
	switch {
	case tw+8 <= x1-x0 && !b.Faint && b.Colour != colourRetry:
		w.text((x0+x1)/2, cy, b.Text, ` class="in"`)
	case tw+8 <= x1-x0:
		w.text((x0+x1)/2, cy, b.Text, ` class="mid"`)
	case inside:
		// A part too narrow for its seconds: the legend gives them.
	default:
		w.label(x1+6, x0-6, cy, b.Text, colourText)
	}
}

// label writes text after right, or, when it would run off the picture,
// ending at left.
func (w *svgWriter) label(right, left, y float64, s, colour string) {
	if right+textWidth(s) <= picWidth-4 {
		w.text(right, y, s, ` class="note"`)
		return
	}
	w.text(left, y, s, ` class="note end"`)
}

func (w *svgWriter) diamond(x, y float64, colour string) {
	w.f(`<path d="M%s %sl5 5l-5 5l-5 -5z" fill="%s"/>`, num(x), num(y-5), colour)
}

func textWidth(s string) float64 { return float64(len([]rune(s))) * picCharW }

// svgStyle is the pictures' style sheet, inside the SVG so that it stands
// alone: generic font families only, nothing fetched.
const svgStyle = `<style>
text{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;font-size:12px;fill:` + colourText + `}
.title{font-size:16px;font-weight:bold}
.sub{font-size:13px}
.tick{text-anchor:middle;fill:` + colourMuted + `;font-size:11px}
.muted{fill:` + colourMuted + `;font-size:11px}
.heading{font-weight:bold;fill:` + colourMuted + `}
.in{text-anchor:middle;fill:#ffffff;font-size:11px}
.mid{text-anchor:middle;font-size:11px}
.note{font-size:11px}
.end{text-anchor:end}
</style>
`

// writePicturesSVG writes one SVG document holding the pictures, one under
// the other; message is drawn instead when there are none.
func writePicturesSVG(out io.Writer, pics []picture, message string) error {
	w := &svgWriter{}
	w.svgDocument(pics, message)
	_, err := io.WriteString(out, w.b.String())
	return err
}

func (w *svgWriter) svgDocument(pics []picture, message string) {
	h := 40
	for i := range pics {
		h = 0
		for j := range pics[:i+1] {
			h += pics[j].height() + 16
		}
	}
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", picWidth, h, picWidth, h)
	w.f("%s", svgStyle)
	w.f(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	if len(pics) == 0 {
		w.text(picLabelX, 24, message, ` class="sub"`)
	}
	y := 0
	for i := range pics {
		pics[i].svg(w, y)
		y += pics[i].height() + 16
	}
	w.f("</svg>\n")
}

// esc escapes s for XML and HTML text and attributes, and drops the
// control characters XML cannot hold.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '"':
			b.WriteString("&#34;")
		case r == '\'':
			b.WriteString("&#39;")
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// droppedText is "1 older entry", "2 older entries".
func droppedText(n int32) string {
	if n == 1 {
		return "1 older entry"
	}
	return fmt.Sprintf("%d older entries", n)
}

// entryRepeats is how many times a timeline entry happened (a retried
// step is one entry with a count) and when it last did (nil for an entry
// that happened once).
func entryRepeats(p *v1alpha1.PhaseTransition) (int, *metav1.MicroTime) {
	return int(p.Times()), p.LastTime
}
