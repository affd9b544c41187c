package config

import (
	"strings"
	"testing"
	"time"
)

// The largest and most repetitive files are read and refused quickly.
func TestLoadIsBounded(t *testing.T) {
	many := func(n int, item string) string {
		var b strings.Builder
		b.WriteString(head + "fencing:\n  classes:\n")
		for range n {
			b.WriteString(item)
		}
		return b.String()
	}
	for _, tc := range []struct{ name, text string }{
		{"classes with a bad value and a bad provider", many(12000, "  - {name: x, provider: ipmi, timeout: soon, wait: {safeTime: soon}}\n")},
		{"classes with unknown keys", many(10000, "  - {Name: x, Provider: none, Timeout: 1s}\n")},
		{"alias expansion", head + "a: &a [{name: x, provider: none}, {name: y, provider: none}]\nfencing: {classes: &b [*a, *a, *a, *a, *a, *a, *a, *a]}\n" +
			"leaderElection: {name: [" + strings.Repeat("*b, ", 5000) + "*b]}\n"},
		{"deep nesting", head + "fencing: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n"},
		{"a long key", head + strings.Repeat("k", MaxFileSize-100) + ": 1\n"},
		{"a long value", head + "nodeSelector: " + strings.Repeat("a,", MaxFileSize/2-100) + "\n"},
		{"over the size", head + "#" + strings.Repeat(" ", MaxFileSize) + "\n"},
		{"many node names", head + "fencing: {classes: [{name: x, provider: none, nodeNames: [" + strings.Repeat("Bad_Name, ", 30000) + "]}]}\n"},
	} {
		start := time.Now()
		err := Parse([]byte(tc.text), Default())
		d := time.Since(start)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		msg := err.Error()
		t.Logf("%s: %d bytes in %s: %.120s", tc.name, len(tc.text), d.Round(time.Millisecond), msg)
		if d > maxLoadTime || len(msg) >= 2048 || strings.Count(msg, "\n") >= 11 {
			t.Errorf("%s: %s, %d bytes, %d lines:\n%s", tc.name, d, len(msg), strings.Count(msg, "\n")+1, msg)
		}
	}
}
