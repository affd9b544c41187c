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
	for eligible, want := range map[int]int{10: 4, 2: 1, 1: 1, 0: 1, 100: 40} {
		if n, _ := c.MaxUnhealthyOf(eligible); n != want {
			t.Fatalf("40%% of %d = %d, want %d", eligible, n, want)
		}
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
    nodeSelector: "node-restriction.kubernetes.io/liberator-fence=wait"
    provider: wait
    wait: {safeTime: 5s}
  - name: stateless
    nodeNames: [worker-9]
    provider: none
`, ""},
		{"none released without proof", head + "fencing: {classes: [{name: x, nodeNames: [w1], provider: none, releaseUnproven: true}]}\n", ""},
		{"releaseUnproven on a power fence", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, address: 10.0.0.1, releaseUnproven: true}]}\n",
			`fencing.classes[0].releaseUnproven: invalid value "true": only provider none releases without proof (provider is fence-agent); remove it`},
		{"releaseUnproven on wait", head + "fencing: {classes: [{name: x, provider: wait, wait: {safeTime: 5s}, releaseUnproven: true}]}\n",
			`fencing.classes[0].releaseUnproven: invalid value "true": only provider none releases without proof (provider is wait)`},
		{"unknown field", head + "unhealthyAftr: 10s\n", `unknown field "unhealthyAftr"`},
		{"unknown strategy", head + "releaseStrategy: Reboot\n", `releaseStrategy: invalid value "Reboot": must be one of OutOfServiceTaint, DeleteNode, ForceDelete`},
		{"negative duration", head + "unhealthyAfter: -5s\n", `unhealthyAfter: invalid value "-5s": must be a positive duration`},
		{"not a duration", head + "healthyDelay: soon\n", `want a duration such as "30s"`},
		{"bad percentage", head + "maxUnhealthy: \"140%\"\n", `maxUnhealthy: invalid value "140%"`},
		{"bad selector", head + "nodeSelector: \"a in b\"\n", `nodeSelector: invalid value`},
		{"class chosen by a label the node's kubelet may set", head + "fencing: {classes: [{name: x, provider: none, nodeSelector: \"example.com/role=db\"}]}\n",
			`fencing.classes[0].nodeSelector: invalid value "example.com/role=db": label key "example.com/role" can be set by the node's own kubelet`},
		{"class chosen by a kubelet-allowed kubernetes.io label", head + "fencing: {classes: [{name: x, provider: none, nodeSelector: \"node.kubernetes.io/instance-type=m5\"}]}\n",
			`label key "node.kubernetes.io/instance-type" can be set by the node's own kubelet`},
		{"redfish over http to a remote BMC", head + "fencing: {classes: [{name: x, provider: redfish, address: \"http://10.0.0.5\", credentialsSecret: s}]}\n",
			`fencing.classes[0].address: invalid value "http://10.0.0.5": must be https`},
		{"wrong kind", "apiVersion: config.liberator.dev/v1alpha1\nkind: Config\n", `kind: invalid value "Config": must be ControllerConfig`},
		{"wait without safeTime", head + "fencing: {classes: [{name: x, provider: wait}]}\n", `fencing.classes[0].wait.safeTime`},
		{"unknown provider", head + "fencing: {classes: [{name: x, provider: ipmi}]}\n", `fencing.classes[0].provider: invalid value "ipmi": must be one of fence-agent, redfish, agent, wait, none`},
		{"fence agent", head + `fenceCheckInterval: 30s
fencing:
  classes:
  - name: ipmi
    nodeSelector: "node-restriction.kubernetes.io/liberator-fence=ipmi"
    provider: fence-agent
    agent: fence_ipmilan
    port: 623
    options: {lanplus: "1", cipher: "3", power_wait: "0"}
    credentialsSecret: bmc-credentials
    powerOnAfterTakeover: true
    nodes:
      worker-1: {address: 127.0.0.1, port: 9001}
      worker-2: {address: 127.0.0.1, port: 9002, credentialsSecret: bmc-worker-2}
  - name: vbox
    provider: fence-agent
    agent: /usr/sbin/fence_vbox
    action: reboot
    address: 192.168.56.1
    nodes: {lab-1: {options: {plug: lab-1}}}
`, ""},
		{"redfish", head + `fencing:
  classes:
  - name: redfish
    nodeNames: [db-1]
    provider: redfish
    address: https://10.0.0.5
    systemID: System.Embedded.1
    insecureSkipVerify: true
    credentialsSecret: idrac
    timeout: 20s
`, ""},
		{"agent missing", head + "fencing: {classes: [{name: x, provider: fence-agent}]}\n", `fencing.classes[0].agent: invalid value "": the fence-agent provider needs agent, such as fence_ipmilan`},
		{"agent not a name", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: \"ipmitool -P x\"}]}\n", `fencing.classes[0].agent: invalid value "ipmitool -P x": must be an agent name such as fence_ipmilan, or an absolute path`},
		{"bad action", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, action: cycle}]}\n", `fencing.classes[0].action: invalid value "cycle": must be off or reboot`},
		{"password in options", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, options: {password: hunter2}}]}\n", `fencing.classes[0].options.password: invalid value "***": liberator sets password itself: use the class field credentialsSecret`},
		{"ip in node options", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, nodes: {w1: {options: {ip: 10.0.0.1}}}}]}\n", `fencing.classes[0].nodes.w1.options.ip: invalid value "10.0.0.1": liberator sets ip itself: use the class field address`},
		{"bad option name", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, options: {\"Lan Plus\": \"1\"}}]}\n", `fencing.classes[0].options: invalid value "Lan Plus": option names are lower-case words`},
		{"multi-line option", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, options: {cipher: \"3\\npassword=x\"}}]}\n", `fencing.classes[0].options.cipher: invalid value "3...": option values must be one line`},
		{"reboot with cycle", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, action: reboot, options: {method: cycle}}]}\n", `method cycle resets the node without reading OFF back`},
		{"bad port", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, nodes: {w1: {port: 70000}}}]}\n", `fencing.classes[0].nodes.w1.port: invalid value "70000"`},
		{"bad secret name", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, credentialsSecret: BMC_Creds}]}\n", `fencing.classes[0].credentialsSecret: invalid value "BMC_Creds": must be a Secret name`},
		{"URL for an agent", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, address: \"https://bmc\"}]}\n", `fence agents take a host name or address, not a URL`},
		{"power on after reboot", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, action: reboot, powerOnAfterTakeover: true}]}\n", `powerOnAfterTakeover: invalid value "true": only applies to action off`},
		{"redfish without address", head + "fencing: {classes: [{name: x, provider: redfish}]}\n", `fencing.classes[0].address: invalid value "": the redfish provider needs the BMC's address`},
		{"redfish node without address", head + "fencing: {classes: [{name: x, provider: redfish, nodes: {w1: {systemID: \"1\"}}}]}\n", `fencing.classes[0].nodes.w1.address: invalid value "": needs an address`},
		{"redfish bad URL", head + "fencing: {classes: [{name: x, provider: redfish, address: \"ftp://bmc\"}]}\n", `must be a host, host:port, or an http(s) URL`},
		{"redfish with options", head + "fencing: {classes: [{name: x, provider: redfish, address: bmc, options: {cipher: \"3\"}}]}\n", `fencing.classes[0].options.cipher: invalid value "3": options are for the fence-agent provider only`},
		{"agent with insecure", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_redfish, insecureSkipVerify: true}]}\n", `ssl_insecure`},
		{"wait with address", head + "fencing: {classes: [{name: x, provider: wait, wait: {safeTime: 5s}, address: 10.0.0.1, powerOnAfterTakeover: true}]}\n", `fencing.classes[0].address: invalid value "set": only the fence-agent and redfish providers take address (provider is wait)`},
		{"negative check interval", head + "fenceCheckInterval: -1m\n", `fenceCheckInterval: invalid value "-1m0s"`},
		{"duplicate class", head + "fencing: {classes: [{name: x, provider: none}, {name: x, provider: none}]}\n", `must be unique`},
		{"zero concurrency", head + "maxConcurrent: 0\n", `maxConcurrent: invalid value "0"`},
		{"not yaml", head + "fencing: [\n", `line 3: did not find expected node content (the file is not valid YAML)`},
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
	if err := Parse([]byte("apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nfencing:\n  classes:\n  - {name: byname, nodeNames: [w1], provider: none}\n  - {name: db, nodeSelector: node-restriction.kubernetes.io/role=db, provider: wait, wait: {safeTime: 5s}}\n"), c); err != nil {
		t.Fatal(err)
	}
	if fc := c.ClassFor("w1", nil); fc == nil || fc.Name != "byname" {
		t.Fatalf("w1 -> %v", fc)
	}
	if fc := c.ClassFor("w2", map[string]string{"node-restriction.kubernetes.io/role": "db"}); fc == nil || fc.Name != "db" {
		t.Fatalf("w2 -> %v", fc)
	}
	if fc := c.ClassFor("w3", map[string]string{"node-restriction.kubernetes.io/role": "web", "role": "db"}); fc != nil {
		t.Fatalf("w3 matched %s; an unmatched node must be unfenceable", fc.Name)
	}
}

func TestFenceDefaults(t *testing.T) {
	c := Default()
	if c.FenceCheckInterval.Duration != time.Minute {
		t.Fatalf("fenceCheckInterval default %s, want 1m", c.FenceCheckInterval.Duration)
	}
	if err := Parse([]byte("apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nfenceCheckInterval: 0s\nfencing: {classes: [{name: ipmi, provider: fence-agent, agent: fence_ipmilan}, {name: lab, provider: wait, wait: {safeTime: 5s}}]}\n"), c); err != nil {
		t.Fatal(err)
	}
	if c.FenceCheckInterval.Duration != 0 {
		t.Fatalf("fenceCheckInterval 0s (off) became %s", c.FenceCheckInterval.Duration)
	}
	if a := c.Fencing.Classes[0].Action; a != ActionOff {
		t.Fatalf("fence-agent action default %q, want off", a)
	}
	if a := c.Fencing.Classes[1].Action; a != "" {
		t.Fatalf("wait class got action %q", a)
	}
}

func TestBMCFor(t *testing.T) {
	fc := FenceClass{Address: "10.0.0.1", Port: 623, CredentialsSecret: "bmc", Options: map[string]string{"lanplus": "1", "cipher": "3"},
		Nodes: map[string]NodeFence{"w1": {Address: "127.0.0.1", Port: 9001, Options: map[string]string{"cipher": "17"}, CredentialsSecret: "bmc-w1"}}}
	b := fc.BMCFor("w1")
	if b.Address != "127.0.0.1" || b.Port != 9001 || b.CredentialsSecret != "bmc-w1" || b.Options["cipher"] != "17" || b.Options["lanplus"] != "1" {
		t.Fatalf("w1: %+v", b)
	}
	b = fc.BMCFor("w2")
	if b.Address != "10.0.0.1" || b.Port != 623 || b.CredentialsSecret != "bmc" || b.Options["cipher"] != "3" {
		t.Fatalf("w2: %+v", b)
	}
	b.Options["cipher"] = "0"
	if fc.Options["cipher"] != "3" {
		t.Fatal("BMCFor shares the class's options map")
	}
}

func TestClassForPerNodeBMCs(t *testing.T) {
	c := Default()
	if err := Parse([]byte(`apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
fencing:
  classes:
  - name: ipmi
    provider: fence-agent
    agent: fence_ipmilan
    nodes: {w1: {address: 127.0.0.1, port: 9001}}
  - {name: rest, provider: wait, wait: {safeTime: 5s}}
`), c); err != nil {
		t.Fatal(err)
	}
	if fc := c.ClassFor("w1", nil); fc == nil || fc.Name != "ipmi" {
		t.Fatalf("w1 -> %v, want ipmi (named under nodes)", fc)
	}
	if fc := c.ClassFor("w2", nil); fc == nil || fc.Name != "rest" {
		t.Fatalf("w2 -> %v, want rest: a class that names its nodes matches only those", fc)
	}
}

func TestProtectedLabelsAndLoopbackHTTP(t *testing.T) {
	for key, want := range map[string]bool{
		"role": true, "example.com/role": true, "kubernetes.io/hostname": true, "topology.kubernetes.io/zone": true,
		"node.kubernetes.io/instance-type": true, "kubelet.kubernetes.io/x": true,
		"node-restriction.kubernetes.io/liberator-fence": false, "node-role.kubernetes.io/db": false, "example.k8s.io/x": false,
	} {
		if got := KubeletCanSet(key); got != want {
			t.Errorf("KubeletCanSet(%q) = %v, want %v", key, got, want)
		}
	}
	for _, a := range []string{"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://10.0.0.5"} {
		if err := checkAddress(ProviderRedfish, a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
}
