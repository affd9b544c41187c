package agentcmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestLogFormat(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, bytes.Repeat([]byte("k"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--node", "n1", "--peer-key-file", key, "--peer-listen", "127.0.0.1:9447"}

	// Anything but text or json: one line, before anything starts.
	var errOut bytes.Buffer
	cmd := New(&errOut, "test")
	cmd.SetArgs(append(args, "--log-format", "yaml"))
	cmd.SetOut(&errOut)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `--log-format "yaml": want "text" or "json"`) {
		t.Fatalf("--log-format yaml: %v, want one line naming text and json", err)
	}

	// json: one JSON object per line with msg and the key/values.
	o := &agentOptions{}
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(append(args, "--log-format", "json")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log, err := o.logger(&out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("lease renewed", "node", "n1", "armed", true)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not one JSON object: %v", out.String(), err)
	}
	if line["msg"] != "lease renewed" || line["node"] != "n1" || line["armed"] != true {
		t.Fatalf("log line %s, want msg, node and armed", out.String())
	}
}
