package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// htmlStyle is the page's style sheet: nothing is fetched.
const htmlStyle = `<style>
body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;font-size:13px;color:#222;margin:12px 16px;background:#fff}
h1{font-size:17px;margin:0 0 4px}
h2{font-size:14px;margin:14px 0 4px}
p{margin:2px 0 8px}
svg{display:block}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{padding:2px 10px 2px 0;text-align:left;vertical-align:top;border-bottom:1px solid #e3e6e8}
th{color:#6b7378;font-weight:normal}
td.n{text-align:right;font-variant-numeric:tabular-nums}
</style>
`

// htmlPage writes a page's head and heading; the caller writes the body
// and ends it with htmlEnd.
func htmlPage(b *strings.Builder, title string) {
	fmt.Fprintf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n%s</head>\n<body>\n", esc(title), htmlStyle)
}

const htmlEnd = "</body>\n</html>\n"

// writeNodeHTML writes `status NODE -o html`: the node's state, then each
// of its Takeovers (newest first) as a picture and a table.
func writeNodeHTML(out io.Writer, now time.Time, ns NodeStatus, tks []v1alpha1.Takeover) error {
	var b strings.Builder
	htmlPage(&b, "liberator status "+ns.Name)
	lease := "no Lease"
	if ns.LeaseAgeSeconds != nil {
		lease = "Lease renewed " + ns.leaseAge() + " ago"
	}
	fmt.Fprintf(&b, "<h1>Node %s</h1>\n<p>Ready=%s, %s, %s, FenceReady=%s; %s as of %s</p>\n", esc(ns.Name), esc(orDash(ns.Ready)), esc(lease),
		esc(ns.scheduling()), esc(orDash(ns.FenceReady)), esc(plural(len(ns.StatefulPods), "stateful pod")), now.UTC().Format(time.RFC3339))
	if len(tks) == 0 {
		fmt.Fprintf(&b, "<p>No Takeovers for node %s.</p>\n", esc(ns.Name))
	}
	for i := len(tks) - 1; i >= 0; i-- {
		takeoverHTML(&b, takeoverPicture(&tks[i], now), &tks[i])
	}
	b.WriteString(htmlEnd)
	_, err := io.WriteString(out, b.String())
	return err
}

// writeNodeSVG writes `status NODE -o svg`: the node's Takeovers, newest
// first, in one SVG document.
func writeNodeSVG(out io.Writer, now time.Time, node string, tks []v1alpha1.Takeover) error {
	pics := make([]picture, 0, len(tks))
	for i := len(tks) - 1; i >= 0; i-- {
		pics = append(pics, takeoverPicture(&tks[i], now))
	}
	return writePicturesSVG(out, pics, "No Takeovers for node "+node+".")
}

// takeoverHTML writes one Takeover: its picture, then its timeline and
// moved pods as tables (times from the picture's start).
func takeoverHTML(b *strings.Builder, p picture, t *v1alpha1.Takeover) {
	fmt.Fprintf(b, "<section>\n")
	w := &svgWriter{}
	w.svgDocument([]picture{p}, "")
	b.WriteString(w.b.String())
	fmt.Fprintf(b, "<h2>Timeline</h2>\n<table>\n<tr><th>phase</th><th>time (UTC)</th><th>T+ (%s)</th><th>count</th><th>reason</th><th>message</th></tr>\n", esc(p.OriginLabel))
	for i := range t.Status.Timeline {
		e := &t.Status.Timeline[i]
		n, _ := entryRepeats(e)
		at := "T" + offset(e.Time.Sub(p.Origin))
		if n > 1 {
			at += " to T" + offset(entryEnd(e).Sub(p.Origin))
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%d</td><td>%s</td><td>%s</td></tr>\n",
			esc(string(e.Phase)), e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), esc(at), n, esc(orDash(e.Reason)), esc(oneLine(e.Message)))
	}
	b.WriteString("</table>\n")
	if n := t.Status.TimelineDropped; n > 0 {
		verb := "were"
		if n == 1 {
			verb = "was"
		}
		fmt.Fprintf(b, "<p>%s of the timeline %s dropped to keep the record small (the oldest repeated steps).</p>\n", droppedText(n), verb)
	}
	if len(t.Status.MovedPods) > 0 {
		b.WriteString("<h2>Moved pods</h2>\n<table>\n<tr><th>pod</th><th>owner</th><th>replacement</th><th>node</th><th>scheduled</th><th>Ready</th><th>down</th></tr>\n")
		for i := range t.Status.MovedPods {
			m := &t.Status.MovedPods[i]
			owner := "-"
			if m.OwnerKind != "" {
				owner = m.OwnerKind + "/" + m.OwnerName
			}
			down := "-"
			if m.ReadyTime != nil {
				down = secondsText(m.ReadyTime.Sub(p.Origin))
			}
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
				esc(m.Namespace+"/"+m.Name), esc(owner), esc(orDash(m.ReplacementName)), esc(orDash(m.ReplacementNode)),
				esc(tOffset(m.ScheduledTime, p.Origin)), esc(tOffset(m.ReadyTime, p.Origin)), down)
		}
		b.WriteString("</table>\n")
	}
	if t.Status.FenceOutput != "" {
		fmt.Fprintf(b, "<p>fence output: %s</p>\n", esc(oneLine(t.Status.FenceOutput)))
	}
	b.WriteString("</section>\n")
}

func tOffset(at *metav1.MicroTime, start time.Time) string {
	if at == nil {
		return "-"
	}
	return "T" + offset(at.Sub(start))
}
