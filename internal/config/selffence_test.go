package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const agentHead = "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\n"

func TestSelfFenceDefaults(t *testing.T) {
	c := Default()
	if err := Parse([]byte(agentHead+"fencing: {classes: [{name: lab, provider: agent}, {name: rest, provider: wait, wait: {safeTime: 5s}}]}\n"), c); err != nil {
		t.Fatal(err)
	}
	sf := c.Fencing.Classes[0].SelfFence
	if sf == nil || sf.Margin.Duration != 2*time.Second || sf.MaxIsolation.Duration != time.Minute {
		t.Fatalf("agent class selfFence %+v, want margin 2s and maxIsolation 1m", sf)
	}
	if c.Fencing.Classes[1].SelfFence != nil {
		t.Fatal("a wait class got a selfFence block")
	}
	c = Default()
	if err := Parse([]byte(agentHead+"fencing: {classes: [{name: fast, provider: agent, selfFence: {margin: 1s, maxIsolation: 20s}}]}\n"), c); err != nil {
		t.Fatal(err)
	}
	if sf := c.Fencing.Classes[0].SelfFence; sf.Margin.Duration != time.Second || sf.MaxIsolation.Duration != 20*time.Second {
		t.Fatalf("fast profile became %+v", sf)
	}
	// A class built in code, without Parse, reads the defaults too.
	fc := FenceClass{Provider: ProviderAgent, SelfFence: &SelfFence{MaxIsolation: Duration{30 * time.Second}}}
	if sf := fc.SelfFenceOrDefault(); sf.Margin.Duration != 2*time.Second || sf.MaxIsolation.Duration != 30*time.Second {
		t.Fatalf("SelfFenceOrDefault = %+v", sf)
	}
}

// An agent class whose bounds cannot be safe is refused with one line that
// names the field and its value.
func TestSelfFenceValidation(t *testing.T) {
	cases := []struct{ name, class, want string }{
		{"margin too small for watch delays", "{name: x, provider: agent, selfFence: {margin: 500ms}}",
			`fencing.classes[0].selfFence.margin: invalid value "500ms": cannot cover clock rates and watch delays: want at least 1s and 3% of maxIsolation (1.8s)`},
		{"margin too small for clock rates", "{name: x, provider: agent, selfFence: {margin: 2s, maxIsolation: 2m}}",
			`fencing.classes[0].selfFence.margin: invalid value "2s": cannot cover clock rates and watch delays: want at least 1s and 3% of maxIsolation (3.6s)`},
		{"negative margin", "{name: x, provider: agent, selfFence: {margin: -1s}}",
			`fencing.classes[0].selfFence.margin: invalid value "-1s": must be a positive duration such as "2s"`},
		{"negative maxIsolation", "{name: x, provider: agent, selfFence: {maxIsolation: -5s}}",
			`fencing.classes[0].selfFence.maxIsolation: invalid value "-5s": must be a positive duration such as "60s"`},
		{"maxIsolation within the margin", "{name: x, provider: agent, selfFence: {margin: 1s, maxIsolation: 1s}}",
			`fencing.classes[0].selfFence.maxIsolation: invalid value "1s": must exceed the margin 1s: it is an agent's isolation bound plus the margin`},
		{"selfFence on a wait class", "{name: x, provider: wait, wait: {safeTime: 5s}, selfFence: {margin: 2s}}",
			`fencing.classes[0].selfFence: invalid value "set": only the agent provider takes selfFence (provider is wait)`},
		{"wait on an agent class", "{name: x, provider: agent, wait: {safeTime: 5s}}",
			`fencing.classes[0].wait: invalid value "set": only the wait provider takes wait; the agent provider waits for the bounds its agents publish (selfFence)`},
		{"BMC fields on an agent class", "{name: x, provider: agent, address: 10.0.0.1}",
			`fencing.classes[0].address: invalid value "set": only the fence-agent and redfish providers take address (provider is agent)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Parse([]byte(agentHead+"fencing: {classes: ["+tc.class+"]}\n"), Default())
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || lines[0] != "line 3: "+tc.want {
				t.Fatalf("error\n got: %q\nwant: %q", lines, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a FieldError", err)
			}
		})
	}
}
