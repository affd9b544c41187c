package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	log, err := New(FormatJSON, 1, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("node fenced", "node", "worker-1", "provider", "redfish", "attempt", 2)
	log.WithValues("takeover", "worker-1-20260101-000000").Error(errors.New("connection refused"), "fencing failed", "node", "worker-1")
	log.V(1).Info("shown at -v 1")
	log.V(2).Info("hidden at -v 1")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON object: %q: %v", l, err)
		}
		if _, ok := m["time"].(string); !ok {
			t.Errorf("no time in %q", l)
		}
		recs = append(recs, m)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "node fenced", "node": "worker-1", "provider": "redfish", "attempt": float64(2)},
		{"level": "ERROR", "msg": "fencing failed", "node": "worker-1", "takeover": "worker-1-20260101-000000", "err": "connection refused"},
		{"msg": "shown at -v 1"},
	}
	for i, w := range want {
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("line %d: %s = %#v, want %#v (%s)", i+1, k, recs[i][k], v, lines[i])
			}
		}
	}
}

func TestTextIsTheDefault(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var format string
	AddFlag(fs, &format)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log, err := New(format, 0, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("node fenced", "node", "worker-1")
	line := out.String()
	if json.Valid(out.Bytes()) || !strings.HasPrefix(line, "I") || !strings.Contains(line, `"node fenced" node="worker-1"`) {
		t.Fatalf("text line %q, want klog's format", line)
	}
}

func TestBadFormat(t *testing.T) {
	for _, f := range []string{"", "JSON", "logfmt"} {
		_, err := New(f, 0, &bytes.Buffer{})
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `want "text" or "json"`) {
			t.Errorf("format %q: error %v, want one line naming text and json", f, err)
		}
	}
}
