package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// --log-format json makes the controller's log one JSON object per line,
// with the message and the key/values as fields.
func TestLogFormatJSON(t *testing.T) {
	var out bytes.Buffer
	o := &Options{LogOutput: &out}
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Load(fs); err != nil {
		t.Fatal(err)
	}
	log, err := o.Logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Info("node fenced", "node", "worker-1", "takeover", "worker-1-20260101-000000")
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not one JSON object: %v", out.String(), err)
	}
	if line["msg"] != "node fenced" || line["node"] != "worker-1" || line["takeover"] != "worker-1-20260101-000000" {
		t.Fatalf("log line %s, want msg, node and takeover", out.String())
	}
}

// The default is klog's text; anything but text or json is refused with
// one line before anything starts.
func TestLogFormatTextAndUnknown(t *testing.T) {
	var out bytes.Buffer
	o := &Options{LogOutput: &out}
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	log, err := o.Logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Info("node fenced", "node", "worker-1")
	if s := out.String(); !strings.HasPrefix(s, "I") || !strings.Contains(s, `"node fenced" node="worker-1"`) {
		t.Fatalf("default log line %q, want klog's text", s)
	}

	err = load(t, "", "--log-format", "yaml")
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `--log-format "yaml": want "text" or "json"`) {
		t.Fatalf("--log-format yaml: %v, want one line naming text and json", err)
	}
}
