package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// The agent's binary stays small only while it links the agent alone: no
// package of the controller, the CLI or controller-runtime (internal/logging,
// the --log-format flag both share, is a leaf over logr, slog and klog).
func TestLinksTheAgentAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/liberator-dev/liberator/"
	allowed := []string{module + "internal/agent", module + "internal/agentlease", module + "internal/logging", module + "cmd/liberator-agent"}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime"):
			t.Errorf("liberator-agent links %s", pkg)
		case strings.HasPrefix(pkg, module) && !hasPrefixAny(pkg, allowed):
			t.Errorf("liberator-agent links %s: the agent binary links internal/agent, internal/agentlease and internal/logging only", pkg)
		}
	}
}

func hasPrefixAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}

// `liberator-agent` takes the command line of `liberator agent`, with or
// without the subcommand, and says which version it is.
func TestCommandLine(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"agent", "--version"}} {
		var out bytes.Buffer
		cmd := newCommand(&out, args)
		cmd.SetOut(&out)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("liberator-agent %s: %v", strings.Join(args, " "), err)
		}
		if want := "liberator-agent version dev (commit unknown"; !strings.Contains(out.String(), want) {
			t.Errorf("liberator-agent %s printed %q, want %q", strings.Join(args, " "), out.String(), want)
		}
	}
	for args, want := range map[string]string{
		"agent agent":        `unknown command "agent"`,
		"--api-timeout=nope": `invalid argument "nope" for "--api-timeout"`,
		"--node=n1":          "--peer-key-file is required",
	} {
		var out bytes.Buffer
		cmd := newCommand(&out, strings.Fields(args))
		cmd.SetOut(&out)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("liberator-agent %s: %v, want an error saying %q", args, err, want)
		}
	}
}
