package cli

import (
	"bytes"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

// Run as kubectl-liberator (kubectl runs the plugin by that name), help
// names the command as the operator types it: kubectl liberator.
func TestPluginDisplayName(t *testing.T) {
	for _, argv0 := range []string{"kubectl-liberator", "/usr/local/bin/kubectl-liberator"} {
		out, _, code := runMain(t, argv0, "status", "--help")
		if code != ExitOK {
			t.Fatalf("%s status --help: exit %d", argv0, code)
		}
		if !strings.Contains(out, "Usage:\n  kubectl liberator status [NODE] [flags]") {
			t.Errorf("%s status --help: no \"kubectl liberator status\" usage line:\n%s", argv0, out)
		}
		if !strings.Contains(out, "\n  kubectl liberator status worker-1\n") || strings.Contains(out, "\n  liberator status") {
			t.Errorf("%s status --help: examples do not say \"kubectl liberator\":\n%s", argv0, out)
		}
		_, errOut, code := runMain(t, argv0, "nope")
		if code != ExitUsage || !strings.Contains(errOut, `for "kubectl liberator"`) {
			t.Errorf("%s nope: exit %d, stderr %q", argv0, code, errOut)
		}
	}
	out, _, _ := runMain(t, "/opt/bin/liberator", "status", "--help")
	if !strings.Contains(out, "Usage:\n  liberator status [NODE] [flags]") || strings.Contains(out, "kubectl liberator") {
		t.Errorf("liberator status --help names itself otherwise:\n%s", out)
	}
}

// kubectl (1.26 and later) completes "kubectl liberator ..." by running
// kubectl_complete-liberator with the words typed so far; under that name
// the binary answers as cobra's __complete does.
func TestKubectlCompletePlugin(t *testing.T) {
	out, errOut, code := runMain(t, "/usr/local/bin/kubectl_complete-liberator", "status", "-o", "")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(out, "json\n") || !strings.Contains(out, "yaml\n") || lines[len(lines)-1] != ":4" {
		t.Errorf("completion of status -o: %q, want the formats and the directive :4 (no file completion)", out)
	}
	out, _, _ = runMain(t, "kubectl_complete-liberator", "ev")
	if !strings.HasPrefix(out, "evacuate") {
		t.Errorf("completion of \"ev\": %q, want evacuate", out)
	}
}
