package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const head = "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\n"

// A refused file is refused with short lines that say where and what.
func TestParseIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the message, in order
		lines      int      // the message's line count; 0: any
	}{
		{"key in the wrong case", head + "MaxConcurrent: 5\n",
			[]string{`line 3: unknown field "MaxConcurrent" (did you mean "maxConcurrent"?)`}, 1},
		{"nested key in the wrong case", head + "fencing:\n  classes:\n  - name: x\n    Provider: none\n",
			[]string{`line 6: fencing.classes[0]: unknown field "Provider" (did you mean "provider"?)`}, 1},
		{"key in the wrong case under a map", head + "fencing: {classes: [{name: x, provider: fence-agent, agent: fence_ipmilan, nodes: {w1: {Address: 10.0.0.1}}}]}\n",
			[]string{`fencing.classes[0].nodes.w1: unknown field "Address" (did you mean "address"?)`}, 1},
		{"misspelt key", head + "leaderElection: {leaseDuraton: 20s}\n",
			[]string{`line 3: leaderElection: unknown field "leaseDuraton" (did you mean "leaseDuration"?)`}, 1},
		{"duplicate key", head + "maxConcurrent: 3\nmaxConcurrent: 4\n", []string{`line 4: maxConcurrent: written twice (first on line 3)`}, 1},
		{"empty key", head + "\"\": 3\n", []string{`line 3: a key must be a name, not an empty key`}, 1},
		{"empty key in a class", head + "fencing: {classes: [{name: x, provider: none, ? }]}\n", []string{`line 3: fencing.classes[0]: a key must be a name, not an empty key`}, 1},
		{"second document", head + "---\n" + head + "dryRun: true\n",
			[]string{`line 3: a second YAML document`}, 1},
		{"second empty document", head + "---\n# nothing\n", []string{`a second YAML document`}, 1},
		{"empty", "", []string{"the file is empty"}, 1},
		{"only comments", "# unhealthyAfter: 10s\n\n   # maxConcurrent: 4\n", []string{"the file is empty"}, 1},
		{"only a document marker", "---\n", []string{"the file is empty"}, 1},
		{"null", "null\n", []string{"the file holds no configuration"}, 1},
		{"empty mapping", "{}\n", []string{"the file holds no configuration"}, 1},
		{"a list", "- apiVersion: config.liberator.dev/v1alpha1\n", []string{"line 1: the file must be a mapping of fields", "not a list"}, 1},
		{"truncated to a word", "apiVersion", []string{"line 1: the file must be a mapping of fields"}, 1},
		{"truncated in a key", head + "unhealthyAfter: 10s\nmaxConc", []string{"line 4"}, 1},
		{"no header", "unhealthyAfter: 10s\n", []string{"apiVersion", "kind", "missing"}, 1},
		{"no kind", "apiVersion: config.liberator.dev/v1alpha1\nunhealthyAfter: 10s\n", []string{"kind: missing"}, 1},
		{"duration as a number", head + "healthyDelay: 0\n",
			[]string{`line 3: healthyDelay: want a duration string such as "30s", got 0`}, 1},
		{"nested duration as a word", head + "retry: {initialBackoff: soon}\n",
			[]string{`line 3: retry.initialBackoff: want a duration such as "30s", got "soon"`}, 1},
		{"bad duration, no cascade", head + "leaderElection: {leaseDuration: 1, renewDeadline: 20s}\n",
			[]string{`leaderElection.leaseDuration: want a duration string`}, 1},
		{"number for a list", head + "fencing: {classes: 3}\n", []string{`line 3: fencing.classes: want a list, got 3`}, 1},
		{"string for a bool", head + "dryRun: yes\n", []string{`line 3: dryRun: want true or false, got "yes"`}, 1},
		{"string for a number", head + "maxConcurrent: three\n", []string{`line 3: maxConcurrent: want a whole number, got "three"`}, 1},
		{"no value", head + "unhealthyAfter:\n", []string{`line 3: unhealthyAfter: no value`}, 1},
		{"mistyped provider, no cascade", head + "fencing: {classes: [{name: x, provider: fence_agent, agent: fence_ipmilan, address: 10.0.0.1, credentialsSecret: bmc}]}\n",
			[]string{`line 3: fencing.classes[0].provider: invalid value "fence_agent"`}, 1},
		{"miscased provider, no cascade", head + "fencing: {classes: [{name: x, Provider: wait, wait: {safeTime: 5s}}]}\n",
			[]string{`unknown field "Provider" (did you mean "provider"?)`}, 1},
		{"validation errors carry lines", head + "releaseStrategy: Reboot\nmaxConcurrent: 0\n",
			[]string{`2 problems`, `line 3: releaseStrategy: invalid value "Reboot"`, `line 4: maxConcurrent: invalid value "0"`}, 3},
		{"metrics address without a port", head + "metricsAddr: \"8080\"\n", []string{`line 3: metricsAddr: invalid value "8080": must be host:port`}, 1},
		{"health address with a bad port", head + "healthAddr: \":80800\"\n", []string{`healthAddr: invalid value ":80800"`}, 1},
		{"both endpoints on one address", head + "metricsAddr: \":9000\"\nhealthAddr: \":9000\"\n", []string{`healthAddr: invalid value ":9000": must differ from metricsAddr`}, 1},
		{"class name not a DNS label", head + "fencing: {classes: [{name: \"My Class\", provider: none}]}\n", []string{`fencing.classes[0].name: invalid value "My Class"`}, 1},
		{"node name not a DNS name", head + "fencing: {classes: [{name: x, nodeNames: [\"Worker 1\"], provider: none}]}\n", []string{`fencing.classes[0].nodeNames[0]: invalid value "Worker 1"`}, 1},
		{"lease namespace not a DNS label", head + "leaderElection: {namespace: Tkr_System}\n", []string{`leaderElection.namespace: invalid value "Tkr_System"`}, 1},
		{"lease name not a DNS name", head + "leaderElection: {name: \"liberator controller\"}\n", []string{`leaderElection.name: invalid value "liberator controller"`}, 1},
		{"merge key", head + "x: &x {maxConcurrent: 4}\n<<: *x\n", []string{`unknown field "x"`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Parse([]byte(tc.yaml), Default())
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("message:\n%s\nwant it to contain (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if n := strings.Count(msg, "\n") + 1; tc.lines > 0 && n != tc.lines {
				t.Fatalf("message has %d lines, want %d:\n%s", n, tc.lines, msg)
			}
		})
	}
}

// Thousands of problems print the first few and how many more.
func TestManyProblemsAreCounted(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + "fencing:\n  classes:\n")
	for i := range 3000 {
		b.WriteString("  - {name: c" + strings.Repeat("x", i%50) + ", provider: ipmi}\n")
	}
	err := Parse([]byte(b.String()), Default())
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if len(msg) >= 2048 || strings.Count(msg, "\n")+1 >= 12 {
		t.Fatalf("%d bytes, %d lines:\n%s", len(msg), strings.Count(msg, "\n")+1, msg)
	}
	if !strings.Contains(msg, "more") || !strings.Contains(msg, "fencing.classes[0].provider") {
		t.Fatalf("want the first problems and a count of the rest:\n%s", msg)
	}
}

// A long value is cut in the message.
func TestLongValuesAreCut(t *testing.T) {
	err := Parse([]byte(head+"nodeSelector: \""+strings.Repeat("a in b ", 2000)+"\"\n"), Default())
	if err == nil {
		t.Fatal("accepted")
	}
	if msg := err.Error(); len(msg) > 400 || !strings.Contains(msg, "nodeSelector") {
		t.Fatalf("%d bytes: %.600s", len(msg), msg)
	}
}

// An empty file given explicitly is refused; no file at all gives the
// defaults.
func TestLoadEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "config "+path+": the file is empty") {
		t.Fatalf("Load(empty file) = %v", err)
	}
	if _, err := Load(""); err != nil {
		t.Fatalf("Load(\"\") = %v, want the defaults", err)
	}
}

// The files shipped with the project load.
func TestShippedConfigsLoad(t *testing.T) {
	for _, p := range shippedConfigs(t) {
		if _, err := Load(p); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// shippedConfigs are the config files the project ships.
func shippedConfigs(t testing.TB) []string {
	t.Helper()
	paths := []string{"../../config/manager/config.yaml", "../../config/components/agent/config.yaml"}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// Check reads a ConfigMap manifest's config.yaml and gives the manifest's
// lines.
func TestCheckConfigMap(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, text, want string }{
		{"literal block", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns}\ndata:\n  config.yaml: |\n    " +
			strings.ReplaceAll(head, "\n", "\n    ") + "dryRun: maybe\n",
			`(ConfigMap ns/c, key config.yaml): line 8: dryRun: want true or false, got "maybe"`},
		{"syntax error in the block", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  config.yaml: |\n    a: [\n",
			`(ConfigMap c, key config.yaml): line 6: did not find expected node content`},
		{"no key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {other: x}\n", `(ConfigMap c): no key config.yaml under data`},
		{"valid", "apiVersion: v1\nkind: ConfigMap\ndata:\n  config.yaml: \"" + strings.ReplaceAll(head, "\n", `\n`) + "\"\n", ""},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		err := Check(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
