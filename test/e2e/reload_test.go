//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/decide"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// configDir is a directory laid out as the kubelet lays out a ConfigMap
// volume: the file is a symlink through ..data, and an update writes a new
// timestamped directory and swaps ..data to it in one rename.
type configDir struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigDir(t *testing.T, content string) *configDir {
	d := &configDir{t: t, dir: t.TempDir()}
	d.write(content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), d.path()); err != nil {
		t.Fatal(err)
	}
	return d
}

// path is the file the controller reads (the mount's config.yaml).
func (d *configDir) path() string { return filepath.Join(d.dir, "config.yaml") }

// write puts content in a new ..<n> directory and points ..data at it.
func (d *configDir) write(content string) {
	d.t.Helper()
	d.n++
	ts := fmt.Sprintf("..v%d", d.n)
	if err := os.Mkdir(filepath.Join(d.dir, ts), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, ts, "config.yaml"), []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
}

// A change of the config file is picked up by the running controller, and
// a bad one is refused while the configuration in force is kept. The file
// is updated as the kubelet updates a ConfigMap volume (..data swapped).
// dryRun: true is applied live: a node that then fails gets a Takeover
// Paused with reason DryRun and is not fenced. An unknown key
// (MaxConcurrent) and a change needing a restart (leaderElection) are each
// refused with one line naming the field, liberator_config_last_reload_successful
// reads 0, and the node is still held by the dry run. Putting dryRun back
// to false lets the incident go on to its fence and release.
func TestConfigReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	good := fastConfig("")
	cd := newConfigDir(t, good)
	k, err := e.StartController("liberator-a", good, t.TempDir(), "--config", cd.path())
	if err != nil {
		t.Fatal(err)
	}
	ctl := &controllerProc{Controller: k, metricsAddr: k.MetricsAddr}
	e.ctl, e.ctlConfig = ctl, good
	t.Cleanup(func() {
		ctl.Stop()
		if t.Failed() {
			t.Logf("controller log (last lines):\n%s", tail(ctl.LogText(), 60))
		}
	})
	e.waitLeader(ctl, time.Minute)
	o := newOracle(e, "config-reload", e.fenceAttempts)

	hash := func() string {
		t.Helper()
		m := regexp.MustCompile(`(?m)^liberator_config_info\{hash="([0-9a-f]+)"\} 1$`).FindStringSubmatch(e.metrics(ctl))
		if m == nil {
			t.Fatal("no liberator_config_info{hash} 1 sample")
		}
		return m[1]
	}
	sample := func(name string) float64 {
		t.Helper()
		v, err := metricValue(ctl, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitSample := func(name string, want float64) {
		t.Helper()
		e.waitFor(fmt.Sprintf("%s %v", name, want), 30*time.Second, func() (bool, error) {
			v, err := metricValue(ctl, name)
			return err == nil && v == want, err
		})
	}
	logLine := func(pattern string) string {
		t.Helper()
		re := regexp.MustCompile(pattern)
		var line string
		e.waitFor("a log line matching "+pattern, 30*time.Second, func() (bool, error) {
			for l := range strings.SplitSeq(ctl.LogText(), "\n") {
				if re.MatchString(l) {
					line = l
					return true, nil
				}
			}
			return false, nil
		})
		return line
	}

	// A valid change, applied live.
	h0 := hash()
	start := time.Now()
	cd.write(fastConfig("dryRun: true\n"))
	waitSample(`liberator_config_reloads_total{result="applied"}`, 1)
	t.Logf("dryRun: true applied %.1fs after the ..data swap", time.Since(start).Seconds())
	h1 := hash()
	if h1 == h0 {
		t.Errorf("liberator_config_info hash still %s after the change", h0)
	}
	t.Logf("applied: %s", logLine(`configuration reloaded.*dryRun`))
	if v := sample("liberator_config_last_reload_successful"); v != 1 {
		t.Errorf("liberator_config_last_reload_successful %v after an applied change, want 1", v)
	}

	// A bad change: an unknown key. Refused, the running one kept.
	cd.write(fastConfig("dryRun: true\nMaxConcurrent: 3\n"))
	waitSample(`liberator_config_reloads_total{result="refused"}`, 1)
	refused := logLine(`configuration change refused.*MaxConcurrent`)
	t.Logf("refused: %s", refused)
	if v := sample("liberator_config_last_reload_successful"); v != 0 {
		t.Errorf("liberator_config_last_reload_successful %v after a refused change, want 0", v)
	}
	if h := hash(); h != h1 {
		t.Errorf("liberator_config_info hash %s after a refused change, want the one in force %s", h, h1)
	}
	// A change that needs a restart: refused too, naming the field.
	cd.write(fastConfig("dryRun: true\nleaderElection: {leaseDuration: 20s}\n"))
	waitSample(`liberator_config_reloads_total{result="refused"}`, 2)
	t.Logf("refused: %s", logLine(`leaderElection.leaseDuration: changed from 15s to 20s, which needs a restart; the change was not applied`))

	// The configuration in force is still the dry run: a failed node is
	// held, not fenced.
	node := ""
	for _, n := range e.c.Nodes() {
		if n != bed.ControlPlaneNode && node == "" {
			node = n
		}
	}
	o.fail(node)
	if err := e.c.PowerOff(node); err != nil {
		t.Fatal(err)
	}
	tk := e.takeoverIn(node, v1alpha1.PhasePaused, time.Minute)
	if tk.Status.Reason != decide.ReasonDryRun || tk.Status.FenceAttempts != 0 {
		t.Fatalf("Takeover %s: %s/%s with %d fence attempts, want Paused/%s and none", tk.Name, tk.Status.Phase, tk.Status.Reason,
			tk.Status.FenceAttempts, decide.ReasonDryRun)
	}
	if !ctl.Exited() {
		t.Logf("the controller runs on with the configuration %s", hash())
	} else {
		t.Fatal("the controller exited after a refused change")
	}

	// dryRun back to false: the incident opened in dry run goes on.
	start = time.Now()
	cd.write(good)
	waitSample(`liberator_config_reloads_total{result="applied"}`, 2)
	waitSample("liberator_config_last_reload_successful", 1)
	if h := hash(); h != h0 {
		t.Errorf("hash %s back on the first file, want %s", h, h0)
	}
	tk = e.takeoverIn(node, v1alpha1.PhaseReleased, time.Minute)
	t.Logf("dryRun: false applied; %s released %.1fs after the swap", tk.Name, time.Since(start).Seconds())
	o.finish("dry run applied live held the node; a bad change refused; released once dry run was off")
}
