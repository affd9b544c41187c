package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testConfigHead = "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\n"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// `controller --check` validates the file and the flags, prints one line
// and touches no cluster (no kubeconfig is given or found).
func TestControllerCheck(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	good := writeConfig(t, testConfigHead+"unhealthyAfter: 20s\n")
	out, errOut, err := run(t, "controller", "--config", good, "--check")
	if err != nil || out != "config "+good+": ok\n" || errOut != "" {
		t.Fatalf("valid file: err %v, out %q, errOut %q", err, out, errOut)
	}
	out, _, err = run(t, "controller", "--config", good, "--check", "--max-concurrent", "0")
	if err == nil || out != "" || !strings.Contains(err.Error(), `maxConcurrent: invalid value "0"`) {
		t.Fatalf("invalid flag: err %v, out %q", err, out)
	}
	bad := writeConfig(t, testConfigHead+"MaxConcurrent: 4\n")
	_, _, err = run(t, "controller", "--config", bad, "--check")
	if err == nil || err.Error() != "config "+bad+`: line 3: unknown field "MaxConcurrent" (did you mean "maxConcurrent"?)` {
		t.Fatalf("invalid file: %v", err)
	}
	out, _, err = run(t, "controller", "--check")
	if err != nil || out != "config (defaults): ok\n" {
		t.Fatalf("no file: err %v, out %q", err, out)
	}
}

// `config validate` checks files (a ControllerConfig, or the ConfigMap that
// holds one under config.yaml) without a cluster.
func TestConfigValidate(t *testing.T) {
	good := writeConfig(t, testConfigHead+"unhealthyAfter: 20s\n")
	cm := writeConfig(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: liberator-config
  namespace: tkr-system
data:
  config.yaml: |
    apiVersion: config.liberator.dev/v1alpha1
    kind: ControllerConfig
    maxConcurrent: 0
`)
	empty := writeConfig(t, "")
	out, errOut, err := run(t, "config", "validate", good)
	if err != nil || out != "config "+good+": ok\n" || errOut != "" {
		t.Fatalf("valid file: err %v, out %q, errOut %q", err, out, errOut)
	}
	_, _, err = run(t, "config", "validate", cm)
	if err == nil || err.Error() != "config "+cm+` (ConfigMap tkr-system/liberator-config, key config.yaml): line 10: maxConcurrent: invalid value "0": must be at least 1` {
		t.Fatalf("ConfigMap: %v", err)
	}
	out, errOut, err = run(t, "config", "validate", good, empty, cm)
	if err == nil || err.Error() != "2 of 3 config files refused" || out != "config "+good+": ok\n" ||
		!strings.Contains(errOut, "config "+empty+": the file is empty") || strings.Count(errOut, "\n") != 2 {
		t.Fatalf("three files: err %v, out %q, errOut %q", err, out, errOut)
	}
	if _, _, err := run(t, "config", "validate"); err == nil {
		t.Fatal("no file: accepted")
	}
}
