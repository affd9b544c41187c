package cli

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// An unknown -o names every format; html and svg need a NODE. Both are
// refused before any cluster is contacted.
func TestStatusOutputFormatErrors(t *testing.T) {
	_, _, err := run(t, "status", "worker-1", "-o", "png")
	if err == nil || !strings.Contains(err.Error(), `unknown output format "png": use wide, json, yaml, name, jsonpath=..., go-template=..., html or svg`) {
		t.Errorf("status -o png: %v, want the list of formats", err)
	}
	for _, f := range []string{"html", "svg"} {
		_, _, err := run(t, "status", "-o", f)
		if err == nil || !strings.Contains(err.Error(), "-o "+f+" draws one node's Takeovers: give a NODE") {
			t.Errorf("status -o %s without a node: %v", f, err)
		}
	}
}

// worker1 returns the fixture's node worker-1 and its Takeovers, oldest
// first.
func worker1(t *testing.T) (NodeStatus, []v1alpha1.Takeover) {
	t.Helper()
	s := fixture()
	var tks []v1alpha1.Takeover
	for _, tk := range s.Takeovers {
		if tk.Spec.NodeName == "worker-1" {
			tks = append(tks, tk)
		}
	}
	sortTakeovers(tks)
	for _, r := range nodeStatuses(s) {
		if r.Name == "worker-1" {
			return r, tks
		}
	}
	t.Fatal("no worker-1 in the fixture")
	return NodeStatus{}, nil
}

// The pictures of a node's Takeovers are the same bytes for the same
// Takeovers.
func TestStatusPictureGolden(t *testing.T) {
	ns, tks := worker1(t)
	var svg, page bytes.Buffer
	if err := writeNodeSVG(&svg, now, ns.Name, tks); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-node.svg.golden", svg.Bytes())
	if err := writeNodeHTML(&page, now, ns, tks); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-node.html.golden", page.Bytes())
	for _, f := range []string{"svg", "html"} {
		var again bytes.Buffer
		if f == "svg" {
			_ = writeNodeSVG(&again, now, ns.Name, tks)
			if !bytes.Equal(again.Bytes(), svg.Bytes()) {
				t.Errorf("a second -o svg differs from the first")
			}
		} else {
			_ = writeNodeHTML(&again, now, ns, tks)
			if !bytes.Equal(again.Bytes(), page.Bytes()) {
				t.Errorf("a second -o html differs from the first")
			}
		}
	}
	// The SVG is well-formed XML and stands alone: nothing fetched.
	checkXML(t, svg.Bytes())
	for _, out := range []string{svg.String(), page.String()} {
		for _, ext := range []string{"http://", "https://", "<script", "@import", "url(", "xlink:href", "<link"} {
			if strings.Contains(strings.ReplaceAll(out, `xmlns="http://www.w3.org/2000/svg"`, ""), ext) {
				t.Errorf("output refers to something outside it: %q", ext)
			}
		}
	}
}

// checkXML fails t unless b parses as XML to its end.
func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
	}
}

// Every name and message is escaped: a pod, node or reason carrying markup
// shows as text.
func TestStatusPictureEscapes(t *testing.T) {
	ns, tks := worker1(t)
	evil := `<script>alert("x")</script>&'`
	tk := tks[len(tks)-1].DeepCopy()
	tk.Name = "tk-" + evil
	tk.Spec.NodeName = "node-" + evil
	tk.Spec.FenceProvider = evil
	tk.Status.Timeline[0].Reason = evil
	tk.Status.Timeline[0].Message = evil + "\x00\x1b"
	tk.Status.MovedPods[0].Name = evil
	tk.Status.MovedPods[0].ReplacementNode = evil
	tk.Status.FenceOutput = evil
	ns.Name = "node-" + evil
	for _, f := range []string{"svg", "html"} {
		var b bytes.Buffer
		var err error
		if f == "svg" {
			err = writeNodeSVG(&b, now, ns.Name, []v1alpha1.Takeover{*tk})
		} else {
			err = writeNodeHTML(&b, now, ns, []v1alpha1.Takeover{*tk})
		}
		if err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Contains(out, "<script") || strings.Contains(out, `"x")`) || strings.ContainsAny(out, "\x00\x1b") {
			t.Errorf("-o %s: markup from a name came through unescaped:\n%s", f, out)
		}
		if !strings.Contains(out, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;") {
			t.Errorf("-o %s: the escaped name is missing", f)
		}
		if f == "svg" {
			checkXML(t, b.Bytes())
		}
	}
	// No node or pod at all: the SVG says so, still well-formed.
	var b bytes.Buffer
	if err := writeNodeSVG(&b, now, "<b>", nil); err != nil {
		t.Fatal(err)
	}
	checkXML(t, b.Bytes())
	if !strings.Contains(b.String(), "No Takeovers for node &lt;b&gt;.") {
		t.Errorf("empty picture:\n%s", b.String())
	}
}

// The axis runs from the last heartbeat seen to the workloads Ready, and
// the parts' bars follow one another, as wide as their seconds.
func TestStatusPictureGeometry(t *testing.T) {
	_, tks := worker1(t)
	tk := &tks[len(tks)-1]
	p := takeoverPicture(tk, now.Add(time.Hour))
	if !p.Start.Equal(now.Add(-120*time.Second)) || !p.End.Equal(now.Add(-71*time.Second)) {
		t.Fatalf("axis %s to %s, want the last heartbeat (T-120s) to mysql-0 Ready (T-71s)", p.Start, p.End)
	}
	if !strings.Contains(p.Subtitle, "node worker-1 · fence lab · strategy OutOfServiceTaint · downtime 49.0s") {
		t.Errorf("subtitle %q", p.Subtitle)
	}
	want := []struct {
		colour string
		secs   float64
	}{{colourDetection, 40}, {colourFence, 5}, {colourRelease, 0}, {colourSchedule, 1}, {colourStart, 3}}
	if len(p.Parts) != len(want) {
		t.Fatalf("%d part bars, want %d: %+v", len(p.Parts), len(want), p.Parts)
	}
	perSecond := (picPlotX1 - picPlotX0) / 49.0
	x := float64(picPlotX0)
	for i, w := range want {
		b := p.Parts[i]
		x0, x1 := p.x(b.From), p.x(b.To)
		if b.Colour != w.colour || math.Abs(x0-x) > 0.01 || math.Abs((x1-x0)-w.secs*perSecond) > 0.01 {
			t.Errorf("part %d: %s from %.1f to %.1f, want %s from %.1f, %.1f wide", i, b.Colour, x0, x1, w.colour, x, w.secs*perSecond)
		}
		x = x1
	}
	if x != picPlotX1 {
		t.Errorf("the parts end at %.1f, the axis at %d", x, picPlotX1)
	}
	// mysql-0's row: down from the last heartbeat to Ready, scheduled at
	// T+46s.
	pods := p.Sections[len(p.Sections)-1]
	if pods.Heading != "moved pods" || len(pods.Rows) != 1 {
		t.Fatalf("sections %+v", p.Sections)
	}
	row := pods.Rows[0]
	if row.Label != "default/mysql-0" || len(row.Bars) != 1 || row.Bars[0].Text != "down 49.0s, Ready on worker-2" ||
		p.x(row.Bars[0].From) != picPlotX0 || p.x(row.Bars[0].To) != picPlotX1 {
		t.Errorf("mysql-0 row %+v", row)
	}
	if len(row.Marks) != 1 || !row.Marks[0].At.Equal(now.Add(-74*time.Second)) {
		t.Errorf("mysql-0's scheduled mark %+v", row.Marks)
	}
}

// An open incident's axis runs to now; the part under way is drawn faint,
// and the pods not Ready yet run to now.
func TestStatusPictureOpenIncident(t *testing.T) {
	hb := atMicro(-60 * time.Second)
	tk := &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-x"},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "worker-1", FenceProvider: "ipmi", Strategy: v1alpha1.StrategyOutOfServiceTaint},
		Status: v1alpha1.TakeoverStatus{
			Phase: v1alpha1.PhaseFencing, LastHeartbeatSeen: &hb,
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: atMicro(-20 * time.Second)},
				{Phase: v1alpha1.PhaseFencing, Time: atMicro(-20 * time.Second)},
			},
			MovedPods: []v1alpha1.MovedPod{{Namespace: "db", Name: "pg-0", OwnerKind: "StatefulSet", OwnerName: "pg"}},
		},
	}
	p := takeoverPicture(tk, now)
	if !p.End.Equal(now) {
		t.Errorf("axis ends %s, want now", p.End)
	}
	if len(p.Parts) != 2 || p.Parts[0].Colour != colourDetection || p.Parts[1].Colour != colourFence || !p.Parts[1].Faint ||
		p.Parts[1].Short != "20.0s so far" || !p.Parts[1].To.Equal(now) {
		t.Errorf("parts %+v, want detection and the fence under way", p.Parts)
	}
	if !strings.Contains(p.Subtitle, "downtime so far 60.0s · open, phase Fencing") {
		t.Errorf("subtitle %q", p.Subtitle)
	}
	pod := p.Sections[1].Rows[0].Bars[0]
	if !pod.Faint || pod.Text != "down 60.0s so far, not Ready yet" {
		t.Errorf("pod bar %+v", pod)
	}
}

func TestTickStep(t *testing.T) {
	for _, c := range []struct {
		span time.Duration
		want string
	}{{time.Second, "100ms"}, {15 * time.Second, "2s"}, {49 * time.Second, "5s"}, {3 * time.Minute, "30s"}, {25 * time.Minute, "5m0s"}} {
		if got := tickStep(c.span).String(); got != c.want {
			t.Errorf("tickStep(%s) = %s, want %s", c.span, got, c.want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 500 * time.Millisecond: "0.5s", 45 * time.Second: "45s", 90 * time.Second: "1m30s", 2 * time.Minute: "2m", time.Hour: "1h", 90 * time.Minute: "1h30m"} {
		if got := tickText(d); got != want {
			t.Errorf("tickText(%s) = %s, want %s", d, got, want)
		}
	}
}

// retried is a takeover whose IPMI fence failed 12 times over 2m40s
// before it worked: the record keeps one Fencing and one Failed entry with
// their counts (and dropped two older entries).
func retried() *v1alpha1.Takeover {
	sec := func(s float64) *metav1.MicroTime {
		m := metav1.NewMicroTime(now.Add(time.Duration(s * float64(time.Second))))
		return &m
	}
	return &v1alpha1.Takeover{
		ObjectMeta: metav1.ObjectMeta{Name: "db-2-20260314-120040"},
		Spec:       v1alpha1.TakeoverSpec{NodeName: "db-2", FenceProvider: "fence-agent", Strategy: v1alpha1.StrategyOutOfServiceTaint},
		Status: v1alpha1.TakeoverStatus{
			Phase: v1alpha1.PhaseWorkloadsReady, LastHeartbeatSeen: sec(0), TimelineDropped: 2,
			Timeline: []v1alpha1.PhaseTransition{
				{Phase: v1alpha1.PhaseDetected, Time: *sec(40), Reason: "LeaseExpired"},
				{Phase: v1alpha1.PhaseFencing, Time: *sec(40), Reason: "FenceStarted", Count: 13, LastTime: sec(200)},
				{Phase: v1alpha1.PhaseFailed, Time: *sec(41), Reason: "FenceFailed", Message: "fence_ipmilan: connection timed out", Count: 12, LastTime: sec(190)},
				{Phase: v1alpha1.PhaseFenced, Time: *sec(200.6), Reason: "Fenced"},
				{Phase: v1alpha1.PhaseReleased, Time: *sec(200.8), Reason: "Released"},
				{Phase: v1alpha1.PhaseWorkloadsReady, Time: *sec(202), Reason: "WorkloadsReady"},
			},
			MovedPods: []v1alpha1.MovedPod{{Namespace: "db", Name: "pg-0", OwnerKind: "StatefulSet", OwnerName: "pg", ReplacementNode: "db-3",
				ScheduledTime: sec(200.9), ReadyTime: sec(202)}},
		},
	}
}

// A retried step is one bar from its first to its last time, labelled
// with its count; the entries the cap dropped are counted.
func TestStatusPictureRetries(t *testing.T) {
	tk := retried()
	p := takeoverPicture(tk, now.Add(time.Hour))
	tl := p.Sections[0]
	if tl.Heading != "timeline (2 older entries dropped)" {
		t.Errorf("timeline heading %q", tl.Heading)
	}
	for i, want := range []struct {
		label, text string
		from, to    float64
	}{
		{"Fencing · FenceStarted (×13)", "×13, T+40.0s to T+3m20.0s", 40, 200},
		{"Failed · FenceFailed (×12)", "×12, T+41.0s to T+3m10.0s", 41, 190},
	} {
		row := tl.Rows[i+1]
		if row.Label != want.label || len(row.Bars) != 1 || len(row.Marks) != 0 {
			t.Errorf("row %d: %+v, want %q with one bar", i+1, row, want.label)
			continue
		}
		b := row.Bars[0]
		if b.Colour != colourRetry || b.Text != want.text || !b.From.Equal(now.Add(seconds(want.from))) || !b.To.Equal(now.Add(seconds(want.to))) {
			t.Errorf("row %q: bar %+v, want %q from T+%gs to T+%gs", row.Label, b, want.text, want.from, want.to)
		}
	}
	// The fence part runs from detection to Fenced, over all the retries.
	if f := p.Parts[1]; f.Colour != colourFence || f.Text != "fence 2m40.6s" && f.Text != "fence 160.6s" {
		t.Errorf("fence part %+v", f)
	}
	var page bytes.Buffer
	if err := writeNodeHTML(&page, now.Add(time.Hour), NodeStatus{Name: "db-2"}, []v1alpha1.Takeover{*tk}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<td>Fencing</td><td>2026-03-14T12:00:40.000Z</td><td class="n">T+40.0s to T+3m20.0s</td><td class="n">13</td>`) {
		t.Errorf("the page's timeline table does not show the Fencing entry's count and span:\n%s", page.String())
	}
	if !strings.Contains(page.String(), "2 older entries of the timeline were dropped") {
		t.Errorf("the page does not say entries were dropped")
	}
}

// An entry written a few milliseconds after the last pod Ready is on the
// axis; one long after it (Recovered) is at its edge, with an arrow.
func TestStatusPictureEntriesOffTheAxis(t *testing.T) {
	_, tks := worker1(t)
	tk := tks[len(tks)-1].DeepCopy()
	tl := tk.Status.Timeline
	tl[len(tl)-1].Time = metav1.NewMicroTime(tk.Status.MovedPods[0].ReadyTime.Add(3 * time.Millisecond))
	tk.Status.Timeline = append(tl, v1alpha1.PhaseTransition{Phase: v1alpha1.PhaseRecovered, Time: atMicro(10 * time.Minute)})
	rows := takeoverPicture(tk, now).Sections[0].Rows
	if got := rows[len(rows)-2].Marks[0].Text; got != "T+49.0s" {
		t.Errorf("WorkloadsReady 3 ms after mysql-0 Ready: %q, want T+49.0s", got)
	}
	if got := rows[len(rows)-1].Marks[0].Text; got != "→ T+12m00.0s (after the axis)" {
		t.Errorf("Recovered 11 minutes later: %q", got)
	}
}
