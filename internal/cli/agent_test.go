package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentHelp(t *testing.T) {
	out, _, err := run(t, "agent", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:\n", "--watchdog-device", "--peer-key-file", "--api-timeout", "--health-addr",
		"resets the node: that is intended, as for SBD", "magic close"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent --help lacks %q", want)
		}
	}
}

// Bad flags are refused with one line naming the flag, before anything
// is opened or any connection is made.
func TestAgentRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODE_NAME", "")
	t.Setenv("POD_IP", "10.0.0.5")
	base := []string{"agent", "--node", "n1", "--peer-key-file", key}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, "--peer-key-file is required"},
		{[]string{"agent", "--peer-key-file", key}, "--node is empty"},
		{[]string{"agent", "--node", "n1", "--peer-key-file", short}, "--peer-key-file: the key has 1 bytes, want at least 32"},
		{[]string{"agent", "--node", "n1", "--peer-key-file", filepath.Join(dir, "missing")}, "--peer-key-file: open"},
		{append(base, "--watchdog-timeout", "1500ms"), "--watchdog-timeout 1.5s: must be a whole number of seconds"},
		{append(base, "--watchdog-timeout", "2s"), "watchdog timeout 2s must be at least twice the check interval 1s plus the peer timeout 1s"},
		{append(base, "--api-timeout", "5s"), "API timeout 5s must be at least twice the renew interval 2s plus six check intervals of 1s"},
		{append(base, "--peer-address", "10.0.0.5"), `--peer-address "10.0.0.5" is not host:port`},
	} {
		_, _, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line containing %q", tc.args[1:], err, tc.want)
		}
	}
}
