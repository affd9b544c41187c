package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/internal/logging"
	"github.com/liberator-dev/liberator/internal/metrics"
)

const reloadBase = `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: 10s
fencing:
  classes:
  - name: lab
    provider: wait
    wait: {safeTime: 5s}
`

// reloadFixture is a controller started from a config file, and the
// reloader over it.
type reloadFixture struct {
	t    *testing.T
	path string
	c    *controller.Controller
	m    *metrics.Metrics
	r    *reloader
	log  *bytes.Buffer
}

func newReloadFixture(t *testing.T, content string, args ...string) *reloadFixture {
	t.Helper()
	f := &reloadFixture{t: t, path: filepath.Join(t.TempDir(), "config.yaml"), log: &bytes.Buffer{}}
	f.write(content)
	o := &Options{}
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append([]string{"--config", f.path}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f.m = metrics.New()
	log, err := logging.New("json", 0, f.log)
	if err != nil {
		t.Fatal(err)
	}
	f.c, err = controller.New(controller.Options{Config: cfg, Kube: kubefake.NewClientset(),
		Client: ctrlfake.NewClientBuilder().WithScheme(scheme).Build(), Metrics: f.m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.r = newReloader(o, f.c, f.m, log)
	return f
}

func (f *reloadFixture) write(content string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// logLines returns the log lines written since the last call.
func (f *reloadFixture) logLines() []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(f.log.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			f.t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	f.log.Reset()
	return out
}

func (f *reloadFixture) counts() (applied, refused, lastOK float64) {
	return testutil.ToFloat64(f.m.ConfigReloads.WithLabelValues("applied")),
		testutil.ToFloat64(f.m.ConfigReloads.WithLabelValues("refused")),
		testutil.ToFloat64(f.m.ConfigLastReloadSuccessful)
}

func (f *reloadFixture) hashInfo() string {
	f.t.Helper()
	metrics, err := f.m.Registry.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range metrics {
		if mf.GetName() == "liberator_config_info" {
			if len(mf.Metric) != 1 {
				f.t.Fatalf("liberator_config_info has %d series, want 1", len(mf.Metric))
			}
			return mf.Metric[0].Label[0].GetValue()
		}
	}
	f.t.Fatal("no liberator_config_info")
	return ""
}

// A valid change is applied: the controller reads it, one info line names
// what changed, the metrics count it and carry the new hash.
func TestReloadAppliesAChange(t *testing.T) {
	f := newReloadFixture(t, reloadBase)
	h0 := f.hashInfo()
	if want, _ := contentHash(f.path); h0 != want || len(h0) != 12 {
		t.Fatalf("hash at start %q, want %q (12 hex digits)", h0, want)
	}
	f.logLines()
	f.write(reloadBase + "dryRun: true\nmaxConcurrent: 5\n")
	f.r.poll()
	cfg := f.c.Config()
	if !cfg.DryRun || cfg.MaxConcurrent != 5 {
		t.Fatalf("after the reload: dryRun %v, maxConcurrent %d; want true, 5", cfg.DryRun, cfg.MaxConcurrent)
	}
	if a, r, ok := f.counts(); a != 1 || r != 0 || ok != 1 {
		t.Errorf("reloads applied %v refused %v, last successful %v; want 1 0 1", a, r, ok)
	}
	if h, want := f.hashInfo(), mustHash(t, f.path); h != want || h == h0 {
		t.Errorf("hash %s after the reload, want %s (not %s)", h, want, h0)
	}
	lines := f.logLines()
	if len(lines) != 1 || lines[0]["msg"] != "configuration reloaded" ||
		lines[0]["changed"] != "maxConcurrent: 3 -> 5, dryRun: false -> true" {
		t.Fatalf("log %v, want one line naming maxConcurrent and dryRun", lines)
	}
	// Nothing changed: nothing happens.
	f.r.poll()
	if a, _, _ := f.counts(); a != 1 || len(f.logLines()) != 0 {
		t.Errorf("a poll of the same content counted or logged")
	}
}

// A bad change is refused with one error line naming the field, counted,
// and the configuration in force is kept; putting the file back clears the
// failure.
func TestReloadRefusesABadChange(t *testing.T) {
	for _, tc := range []struct{ name, content, field string }{
		{"unknown key", reloadBase + "MaxConcurrent: 3\n", `unknown field "MaxConcurrent"`},
		{"bad duration", strings.Replace(reloadBase, "10s", "10x", 1), "unhealthyAfter"},
		{"empty", "", "empty"},
		{"metrics address", reloadBase + "metricsAddr: :9999\n", `metricsAddr: changed from ":8080" to ":9999", which needs a restart; the change was not applied`},
		{"leader election", reloadBase + "leaderElection: {enabled: false}\n", "leaderElection.enabled: changed from true to false, which needs a restart"},
		{"fence check interval", reloadBase + "fenceCheckInterval: 0s\n", "fenceCheckInterval: changed from 1m0s to 0s, which needs a restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReloadFixture(t, reloadBase)
			before, h0 := f.c.Config(), f.hashInfo()
			f.logLines()
			f.write(tc.content)
			f.r.poll()
			f.r.poll() // looked at once
			if f.c.Config() != before {
				t.Error("the configuration in force changed")
			}
			if a, r, ok := f.counts(); a != 0 || r != 1 || ok != 0 {
				t.Errorf("reloads applied %v refused %v, last successful %v; want 0 1 0", a, r, ok)
			}
			if h := f.hashInfo(); h != h0 {
				t.Errorf("hash %s, want the one in force %s", h, h0)
			}
			lines := f.logLines()
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want one: %v", len(lines), lines)
			}
			l := lines[0]
			msg, _ := l["err"].(string)
			if l["level"] != "ERROR" || !strings.Contains(msg, tc.field) || strings.Contains(msg, "\n") ||
				!strings.Contains(l["msg"].(string), "the running configuration is kept") {
				t.Errorf("log line %v, want one error line naming %s", l, tc.field)
			}
			t.Logf("refused: %s", msg)

			f.write(reloadBase)
			f.r.poll()
			if _, r, ok := f.counts(); r != 1 || ok != 1 {
				t.Errorf("file put back: refused %v, last successful %v; want 1, 1", r, ok)
			}
		})
	}
}

// The flags that were set win over every reload, as at start.
func TestReloadKeepsFlagsOverTheFile(t *testing.T) {
	f := newReloadFixture(t, reloadBase, "--max-concurrent", "2")
	f.write(reloadBase + "maxConcurrent: 5\nhealthyDelay: 1m\n")
	f.r.poll()
	cfg := f.c.Config()
	if cfg.MaxConcurrent != 2 || cfg.HealthyDelay.Duration.String() != "1m0s" {
		t.Fatalf("maxConcurrent %d (flag 2), healthyDelay %s (file 1m)", cfg.MaxConcurrent, cfg.HealthyDelay.Duration)
	}
}

// A file that goes away is refused once, and the controller goes on.
func TestReloadMissingFile(t *testing.T) {
	f := newReloadFixture(t, reloadBase)
	before := f.c.Config()
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	f.logLines()
	f.r.poll()
	f.r.poll()
	if _, r, ok := f.counts(); r != 1 || ok != 0 || f.c.Config() != before || len(f.logLines()) != 1 {
		t.Errorf("missing file: refused %v, last successful %v, config kept %v", r, ok, f.c.Config() == before)
	}
}

// The log names a changed fence class, never its values (BMC addresses,
// agent options).
func TestReloadLogsNoClassValues(t *testing.T) {
	base := reloadBase + "  - name: bmc\n    provider: fence-agent\n    agent: fence_ipmilan\n    nodeNames: [w9]\n    address: 10.0.0.9\n    options: {lanplus: \"1\"}\n    credentialsSecret: bmc\n"
	f := newReloadFixture(t, base)
	f.logLines()
	f.write(strings.Replace(base, "10.0.0.9", "10.0.0.77", 1))
	f.r.poll()
	lines := f.logLines()
	if len(lines) != 1 || lines[0]["changed"] != "fencing.classes[bmc] changed" {
		t.Fatalf("log %v, want one line naming fencing.classes[bmc]", lines)
	}
	if b, _ := json.Marshal(lines); strings.Contains(string(b), "10.0.0.") {
		t.Fatalf("the log holds a class option's value: %s", b)
	}
}

func mustHash(t *testing.T, path string) string {
	t.Helper()
	h, err := contentHash(path)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
