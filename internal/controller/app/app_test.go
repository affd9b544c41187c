package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/leaderelection"
)

// load parses args (and --config with file, when given) and loads.
func load(t *testing.T, file string, args ...string) error {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	o.AddFlags(fs)
	if file != "" {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.Load(fs)
	if err == nil && cfg == nil {
		t.Fatal("Load returned neither a config nor an error")
	}
	return err
}

// A flag that is set wins over the file; a flag left alone does not.
func TestLoadFlagsOverrideTheFile(t *testing.T) {
	o := &Options{}
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	o.AddFlags(fs)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nunhealthyAfter: 20s\nhealthyDelay: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--config", path, "--unhealthy-after", "15s", "--dry-run", "--leader-elect=false", "--max-unhealthy", "40%"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UnhealthyAfter.Duration != 15*time.Second || cfg.HealthyDelay.Duration != 30*time.Second {
		t.Errorf("unhealthyAfter %s (flag 15s), healthyDelay %s (file 30s)", cfg.UnhealthyAfter.Duration, cfg.HealthyDelay.Duration)
	}
	if !cfg.DryRun || cfg.LeaderElection.Enabled || cfg.MaxUnhealthy.String() != "40%" {
		t.Errorf("dryRun %v, leader election %v, maxUnhealthy %s", cfg.DryRun, cfg.LeaderElection.Enabled, cfg.MaxUnhealthy.String())
	}
}

// An invalid value, from the file or a flag, is one line.
func TestLoadRefusesInvalidConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"file", "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\nreleaseStrategy: Reboot\n", nil, `releaseStrategy: invalid value "Reboot"`},
		{"flag", "", []string{"--release-strategy", "Reboot"}, `invalid configuration (file and flags): releaseStrategy: invalid value "Reboot"`},
	} {
		err := load(t, tc.file, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line containing %q", tc.name, err, tc.want)
		}
	}
}

func TestHealthEndpoints(t *testing.T) {
	synced := false
	srv := httptest.NewServer(healthMux(func() bool { return synced }, leaderelection.NewLeaderHealthzAdaptor(time.Second)))
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d before any election", code)
	}
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d before the caches synced", code)
	}
	synced = true
	if code := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d once synced", code)
	}
}

func TestLoadRefusesAZeroRequestRate(t *testing.T) {
	for _, args := range [][]string{{"--kube-api-qps", "0"}, {"--kube-api-burst", "0"}} {
		err := load(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "--kube-api-qps must be above 0") {
			t.Errorf("%v: error %v, want one naming --kube-api-qps and --kube-api-burst", args, err)
		}
	}
	if err := load(t, "", "--kube-api-qps", "200", "--kube-api-burst", "400"); err != nil {
		t.Errorf("valid rates refused: %v", err)
	}
}
