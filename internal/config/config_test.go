package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.UnhealthyAfter.Duration != 40*time.Second || c.ReleaseStrategy != StrategyOutOfServiceTaint {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if n, _ := c.MaxUnhealthyOf(10); n != 4 {
		t.Fatalf("40%% of 10 = %d, want 4", n)
	}
}

func TestParse(t *testing.T) {
	head := "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\n"
	cases := []struct {
		name, yaml string
		wantErr    string // substring; empty means valid
	}{
		{"full", head + `unhealthyAfter: 10s
releaseStrategy: DeleteNode
maxUnhealthy: 2
fencing:
  classes:
  - name: lab
    nodeSelector: "liberator.dev/fence=wait"
    provider: wait
    wait: {safeTime: 5s}
  - name: stateless
    nodeNames: [worker-9]
    provider: none
`, ""},
		{"unknown field", head + "unhealthyAftr: 10s\n", `unknown field "unhealthyAftr"`},
		{"unknown strategy", head + "releaseStrategy: Reboot\n", `releaseStrategy: invalid value "Reboot": must be one of OutOfServiceTaint, DeleteNode, ForceDelete`},
		{"negative duration", head + "unhealthyAfter: -5s\n", `unhealthyAfter: invalid value "-5s": must be a positive duration`},
		{"not a duration", head + "healthyDelay: soon\n", `want a duration such as "30s"`},
		{"bad percentage", head + "maxUnhealthy: \"140%\"\n", `maxUnhealthy: invalid value "140%"`},
		{"bad selector", head + "nodeSelector: \"a in b\"\n", `nodeSelector: invalid value`},
		{"wrong kind", "apiVersion: config.liberator.dev/v1alpha1\nkind: Config\n", `kind: invalid value "Config": must be ControllerConfig`},
		{"wait without safeTime", head + "fencing: {classes: [{name: x, provider: wait}]}\n", `fencing.classes[0].wait.safeTime`},
		{"unknown provider", head + "fencing: {classes: [{name: x, provider: ipmi}]}\n", `fencing.classes[0].provider: invalid value "ipmi"`},
		{"duplicate class", head + "fencing: {classes: [{name: x, provider: none}, {name: x, provider: none}]}\n", `must be unique`},
		{"zero concurrency", head + "maxConcurrent: 0\n", `maxConcurrent: invalid value "0"`},
		{"not yaml", head + "fencing: [\n", `yaml`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Parse([]byte(tc.yaml), Default())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestClassFor(t *testing.T) {
	c := Default()
	if err := Parse([]byte("apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nfencing:\n  classes:\n  - {name: byname, nodeNames: [w1], provider: none}\n  - {name: db, nodeSelector: role=db, provider: wait, wait: {safeTime: 5s}}\n"), c); err != nil {
		t.Fatal(err)
	}
	if fc := c.ClassFor("w1", nil); fc == nil || fc.Name != "byname" {
		t.Fatalf("w1 -> %v", fc)
	}
	if fc := c.ClassFor("w2", map[string]string{"role": "db"}); fc == nil || fc.Name != "db" {
		t.Fatalf("w2 -> %v", fc)
	}
	if fc := c.ClassFor("w3", map[string]string{"role": "web"}); fc != nil {
		t.Fatalf("w3 matched %s; an unmatched node must be unfenceable", fc.Name)
	}
}
