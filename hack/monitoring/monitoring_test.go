package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const runbookURL = "https://github.com/liberator-dev/liberator/blob/main/docs/runbook.md#"

func root(t *testing.T) string {
	t.Helper()
	r, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGeneratedFiles fails when a committed generated file differs from
// what `go -C hack/monitoring run .` writes.
func TestGeneratedFiles(t *testing.T) {
	r := root(t)
	files, err := generated(r)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(r, p))
		if err != nil {
			t.Errorf("%s: %v (run: go -C hack/monitoring run .)", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what hack/monitoring generates: run go -C hack/monitoring run . and commit the result", p)
		}
	}
}

// rule is one rule of the PrometheusRule.
type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

// prometheusRule reads config/prometheus/prometheusrule.yaml and returns
// its spec (the rule groups, as a plain Prometheus rule file holds them)
// both parsed and as YAML.
func prometheusRule(t *testing.T) (ruleGroups, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), rulesPath))
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s, not a monitoring.coreos.com/v1 PrometheusRule", rulesPath, obj.APIVersion, obj.Kind)
	}
	var g ruleGroups
	if err := json.Unmarshal(obj.Spec, &g); err != nil {
		t.Fatalf("%s: spec: %v", rulesPath, err)
	}
	plain, err := yaml.JSONToYAML(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return g, plain
}

func alerts(t *testing.T) []rule {
	g, _ := prometheusRule(t)
	var out []rule
	for _, gr := range g.Groups {
		for _, r := range gr.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no alert", rulesPath)
	}
	return out
}

// githubAnchors returns the anchors GitHub gives the headings of a
// Markdown file: lower case, punctuation other than - and _ dropped,
// spaces as -, repeats suffixed -1, -2, ...
func githubAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	inFence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// TestAlertsDocumented checks every alert's severity and annotations, and
// that its runbook_url names a heading of docs/runbook.md.
func TestAlertsDocumented(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root(t), "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := githubAnchors(string(md))
	seen := map[string]bool{}
	for _, a := range alerts(t) {
		if seen[a.Alert] {
			t.Errorf("alert %s is defined twice", a.Alert)
		}
		seen[a.Alert] = true
		switch a.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("alert %s: severity label %q, want critical, warning or info", a.Alert, a.Labels["severity"])
		}
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("alert %s has no %s annotation", a.Alert, k)
			}
		}
		u := a.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(u, runbookURL)
		switch {
		case !ok:
			t.Errorf("alert %s: runbook_url %q does not start with %s", a.Alert, u, runbookURL)
		case !anchors[anchor]:
			t.Errorf("alert %s: runbook_url %q: docs/runbook.md has no heading with the anchor #%s", a.Alert, u, anchor)
		}
	}
}

// ruleTest is the part of a promtool rule test file this package reads.
type ruleTest struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			EvalTime  string            `json:"eval_time"`
			Alertname string            `json:"alertname"`
			ExpAlerts []json.RawMessage `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// readRuleTest reads the promtool rule test file f.
func readRuleTest(t *testing.T, f string) ([]byte, ruleTest) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var rt ruleTest
	if err := yaml.Unmarshal(data, &rt); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return data, rt
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "config", "prometheus", "tests", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests in config/prometheus/tests (%v)", err)
	}
	return files
}

// TestEveryAlertTested checks that for every alert some promtool test
// expects it to fire and some test expects it to stay silent.
func TestEveryAlertTested(t *testing.T) {
	fires, silent := map[string]int{}, map[string]int{}
	for _, f := range ruleTestFiles(t) {
		_, rt := readRuleTest(t, f)
		if len(rt.RuleFiles) != 1 || rt.RuleFiles[0] != rulesFileName {
			t.Errorf("%s: rule_files is %v, want [%s] (the spec of %s)", f, rt.RuleFiles, rulesFileName, rulesPath)
		}
		for _, tc := range rt.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					silent[a.Alertname]++
				}
			}
		}
	}
	known := map[string]bool{}
	for _, a := range alerts(t) {
		known[a.Alert] = true
		if fires[a.Alert] == 0 {
			t.Errorf("alert %s: no promtool test in config/prometheus/tests expects it to fire", a.Alert)
		}
		if silent[a.Alert] == 0 {
			t.Errorf("alert %s: no promtool test in config/prometheus/tests expects it not to fire", a.Alert)
		}
	}
	for name := range fires {
		if !known[name] {
			t.Errorf("config/prometheus/tests test an alert %s that %s does not define", name, rulesPath)
		}
	}
}

// rulesFileName is the name the rule tests give the extracted rule file.
const rulesFileName = "liberator.rules.yaml"

// promtool returns the pinned promtool (hack/tools/build.sh), from
// $PROMTOOL, $LIBERATOR_TOOLS_BIN or by running build.sh as the e2e bed
// does. Without it the test fails under CI=true and is skipped otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is required under CI: %s", msg)
		}
		t.Skipf("promtool not available (%s): run make verify-monitoring, or set PROMTOOL", msg)
	}
	if p := os.Getenv("PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing("PROMTOOL=%s: %v", p, err)
		}
		return p
	}
	dir := os.Getenv("LIBERATOR_TOOLS_BIN")
	if dir == "" {
		cmd := exec.Command("bash", filepath.Join(root(t), "hack", "tools", "build.sh"))
		cmd.Dir = root(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			missing("hack/tools/build.sh failed: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir = lines[len(lines)-1]
	}
	p := filepath.Join(dir, "promtool")
	if _, err := os.Stat(p); err != nil {
		missing("%v", err)
	}
	return p
}

// TestPromtool runs `promtool check rules` on the PrometheusRule's spec
// and `promtool test rules` on config/prometheus/tests.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	_, plain := prometheusRule(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, rulesFileName)
	if err := os.WriteFile(rules, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", rules).CombinedOutput()
	t.Logf("promtool check rules:\n%s", out)
	if err != nil {
		t.Fatalf("promtool check rules: %v", err)
	}
	var tests []string
	cases, evals := 0, 0
	for _, f := range ruleTestFiles(t) {
		data, rt := readRuleTest(t, f)
		for _, tc := range rt.Tests {
			cases++
			evals += len(tc.AlertRuleTest)
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, dst)
	}
	out, err = exec.Command(bin, append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	t.Logf("promtool test rules:\n%s", out)
	if err != nil {
		t.Fatalf("promtool test rules: %v", err)
	}
	if n := strings.Count(string(out), "SUCCESS"); n != len(tests) {
		t.Fatalf("promtool test rules reported SUCCESS for %d of %d files", n, len(tests))
	}
	t.Logf("promtool test rules: %d files, %d tests, %d alert evaluations: all passed", len(tests), cases, evals)
}

// exported is what the controller's /metrics serves: name -> type, and
// the bucket bounds of the histograms that list-metrics could read.
type exported struct {
	types   map[string]string
	buckets map[string][]float64
}

// exportedMetrics runs hack/list-metrics in the main module.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	cmd := exec.Command("go", "run", "./hack/list-metrics")
	cmd.Dir = root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./hack/list-metrics: %v\n%s", err, stderr.String())
	}
	e := exported{types: map[string]string{}, buckets: map[string][]float64{}}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("list-metrics printed %q", line)
		}
		e.types[f[0]] = f[1]
		if len(f) == 3 {
			for _, b := range strings.Split(f[2], ",") {
				v, err := strconv.ParseFloat(b, 64)
				if err != nil {
					t.Fatalf("list-metrics: bucket %q: %v", b, err)
				}
				e.buckets[f[0]] = append(e.buckets[f[0]], v)
			}
		}
	}
	if len(e.types) == 0 {
		t.Fatal("list-metrics printed no metric")
	}
	return e
}

// checked are the prefixes of the metrics the controller must export for
// a query to make sense.
var checked = []string{"liberator_", "rest_client_", "workqueue_", "leader_election_"}

// family resolves a sample name to its exported family, or says why not.
func (e exported) family(name string) (string, error) {
	if _, ok := e.types[name]; ok {
		typ := e.types[name]
		if typ == "histogram" || typ == "summary" {
			return "", fmt.Errorf("%s is a %s: query %s_bucket, _sum or _count", name, typ, name)
		}
		return name, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch typ := e.types[base]; {
		case typ == "histogram", typ == "summary" && suffix != "_bucket":
			return base, nil
		case typ != "":
			return "", fmt.Errorf("%s: %s is a %s, it has no %s series", name, base, typ, suffix)
		}
	}
	return "", fmt.Errorf("the controller exports no metric %s", name)
}

// grafanaVars are the dashboard's variables, replaced by sample values
// before a query is parsed.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$__interval", "1m", "$job", "liberator")

// queries returns every PromQL expression of the rules and the dashboard,
// by where it comes from.
func queries(t *testing.T) map[string]string {
	t.Helper()
	q := map[string]string{}
	g, _ := prometheusRule(t)
	for _, gr := range g.Groups {
		for _, r := range gr.Rules {
			q[rulesPath+": "+r.Alert+r.Record] = r.Expr
		}
	}
	data, err := os.ReadFile(filepath.Join(root(t), dashboardPath))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	n := 0
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q, target %d has no expression", dashboardPath, p.Title, i)
			}
			q[fmt.Sprintf("%s: panel %q, target %d", dashboardPath, p.Title, i)] = tg.Expr
			n++
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *[a-zA-Z_]+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		s, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(SELECTOR, LABEL)", dashboardPath, v.Name, v.Query)
			continue
		}
		q[fmt.Sprintf("%s: variable %s", dashboardPath, v.Name)] = m[1]
	}
	if n == 0 {
		t.Fatalf("%s has no query", dashboardPath)
	}
	return q
}

// TestQueriesUseExportedMetrics parses every PromQL expression of the
// alert rules and the dashboard with the Prometheus parser, and checks
// that each liberator_*, rest_client_*, workqueue_* and leader_election_*
// series it selects is one the controller exports (hack/list-metrics), and
// that an le matcher names a bucket the histogram has.
func TestQueriesUseExportedMetrics(t *testing.T) {
	e := exportedMetrics(t)
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	names := []string{}
	qs := queries(t)
	for where := range qs {
		names = append(names, where)
	}
	sort.Strings(names)
	for _, where := range names {
		expr, err := p.ParseExpr(grafanaVars.Replace(qs[where]))
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, qs[where], err)
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			if name == "" {
				t.Errorf("%s: selector %s has no metric name", where, vs)
				return nil
			}
			if !hasPrefix(name, checked) {
				return nil
			}
			fam, err := e.family(name)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				return nil
			}
			used[fam] = true
			for _, m := range vs.LabelMatchers {
				if m.Name != "le" {
					continue
				}
				if err := e.checkBucket(fam, m); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			return nil
		})
	}
	t.Logf("%d queries parsed; they use %d of the controller's metrics", len(qs), len(used))
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// checkBucket fails an equality matcher on le that names no bucket of fam.
func (e exported) checkBucket(fam string, m *labels.Matcher) error {
	if m.Type != labels.MatchEqual {
		return nil
	}
	bs, ok := e.buckets[fam]
	if !ok {
		return fmt.Errorf("%s{le=%q}: the buckets of %s are unknown (a vector without children): match le with a regular expression or observe it in list-metrics", fam, m.Value, fam)
	}
	v, err := strconv.ParseFloat(m.Value, 64)
	if err != nil {
		return fmt.Errorf("%s{le=%q}: %v", fam, m.Value, err)
	}
	for _, b := range bs {
		if b == v || (math.IsInf(b, 1) && math.IsInf(v, 1)) {
			return nil
		}
	}
	return fmt.Errorf("%s{le=%q}: %s has no such bucket (its bounds: %v)", fam, m.Value, fam, bs)
}

// TestGithubAnchors pins the anchor rule TestAlertsDocumented relies on.
func TestGithubAnchors(t *testing.T) {
	got := githubAnchors("# Runbook\n## Where to look\n```sh\n# not a heading\n```\n### The same pause for another reason: `APIUnreliable`\n## A node died\n### What to do\n## Fencing\n### What to do\n")
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"a-node-died", "fencing", "runbook", "the-same-pause-for-another-reason-apiunreliable", "what-to-do", "what-to-do-1", "where-to-look"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("anchors %v, want %v", keys, want)
	}
}

// TestPromtoolPin checks that the parser this module checks the queries
// with is the Prometheus that hack/tools pins promtool at.
func TestPromtoolPin(t *testing.T) {
	version := func(gomod string) string {
		data, err := os.ReadFile(filepath.Join(root(t), gomod))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/prometheus/prometheus (v\S+)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s requires no github.com/prometheus/prometheus", gomod)
		}
		return string(m[1])
	}
	tools, here := version("hack/tools/prometheus/go.mod"), version("hack/monitoring/go.mod")
	if tools != here {
		t.Errorf("promtool is pinned at prometheus %s (hack/tools/prometheus) but hack/monitoring parses with %s: keep them equal", tools, here)
	}
}

// TestDashboardDecodes reads the committed dashboard back with the SDK's
// types (panels and Prometheus queries decoded by their plugin) and checks
// that it encodes to the same JSON: no field the SDK does not know.
func TestDashboardDecodes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root(t), dashboardPath))
	if err != nil {
		t.Fatal(err)
	}
	plugins.RegisterDefaultPlugins()
	//lint:ignore SA1019 the dashboard is in the classic model (see build).
	var d dashboard.Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	again, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), data) {
		t.Errorf("%s does not survive a decode and encode with the Grafana Foundation SDK's types", dashboardPath)
	}
	panels := 0
	for _, p := range d.Panels {
		if p.Panel != nil {
			panels++
			if len(p.Panel.Targets) == 0 {
				t.Errorf("panel %q has no query", *p.Panel.Title)
			}
		}
	}
	t.Logf("%s: %d panels", dashboardPath, panels)
}
