package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The drill's page draws its Takeover with what the drill saw: the
// trigger, the probe's downtime, the pod seen Ready.
func TestDrillReportHTML(t *testing.T) {
	ob := drillFixture()
	hb := metav1.NewMicroTime(time.Date(2026, 3, 14, 11, 59, 59, 0, time.UTC))
	ob.takeover.Status.LastHeartbeatSeen = &hb
	r := buildDrillReport(ob)
	p := drillPicture(r, ob.takeover)
	if !p.Origin.Equal(hb.Time) || !p.Start.Equal(hb.Time) {
		t.Errorf("axis from %s (zero %s), want the last heartbeat %s", p.Start, p.Origin, hb.Time)
	}
	if len(p.Lines) != 1 || !p.Lines[0].At.Equal(r.TriggeredAt) {
		t.Errorf("lines %+v, want the trigger at %s", p.Lines, r.TriggeredAt)
	}
	drill := p.Sections[len(p.Sections)-1]
	if len(drill.Rows) != 2 || drill.Rows[0].Label != "probe 127.0.0.1:3306" || drill.Rows[1].Label != "default/mysql-0 seen Ready" {
		t.Fatalf("drill rows %+v", drill.Rows)
	}
	probe := drill.Rows[0].Bars[0]
	if probe.Colour != colourProbe || !probe.From.Equal(*r.Probe.FirstFailure) || !probe.To.Equal(*r.Probe.Restored) ||
		probe.Text != "client-visible downtime 19.2s" {
		t.Errorf("probe bar %+v", probe)
	}
	// The probe answered again after the Takeover's last instant: the
	// axis grows to hold it.
	if !p.End.Equal(*r.Probe.Restored) {
		t.Errorf("axis ends %s, want the probe restored at %s", p.End, *r.Probe.Restored)
	}
	if m := drill.Rows[1].Marks[0]; !m.At.Equal(r.TriggeredAt.Add(seconds(*r.Pods[0].ObservedReadySeconds))) {
		t.Errorf("seen Ready at %s", m.At)
	}

	var b bytes.Buffer
	if err := writeDrillHTML(&b, r, ob.takeover); err != nil {
		t.Fatal(err)
	}
	golden(t, "drill-report.html.golden", b.Bytes())

	// --report-html writes the same page; without a Takeover the page
	// says so.
	path := filepath.Join(t.TempDir(), "drill.html")
	if err := writeReportHTML(path, r, ob.takeover); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b.Bytes()) {
		t.Errorf("--report-html file differs from the page (%v)", err)
	}
	if err := writeReportHTML(path, r, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !strings.Contains(string(got), "No Takeover was opened for the node.") || strings.Contains(string(got), "<svg") {
		t.Errorf("page without a Takeover:\n%s", got)
	}
	if err := writeReportHTML(filepath.Join(t.TempDir(), "missing", "drill.html"), r, nil); err == nil || !strings.Contains(err.Error(), "write the report") {
		t.Errorf("unwritable path: %v", err)
	}
}
