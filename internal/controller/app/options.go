// Package app wires the takeover controller to a cluster: it loads the
// configuration, builds the clients, checks the CRD and the RBAC before
// anything else, serves the metrics and health endpoints and runs the
// controller under leader election. The controller command of internal/cli
// is a thin shell around Options.Load and Run.
package app

import (
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/logging"
)

// Options are the controller command's flags. A flag that is set wins over
// the config file.
type Options struct {
	ConfigPath      string
	Kubeconfig      string
	KubeContext     string
	Verbosity       int
	LogFormat       string
	UnhealthyAfter  time.Duration
	HealthyDelay    time.Duration
	ReleaseStrategy string
	MaxUnhealthy    string
	MaxConcurrent   int
	DryRun          bool
	LeaderElect     bool
	MetricsAddr     string
	HealthAddr      string
	// KubeAPIQPS and KubeAPIBurst bound the requests per second the
	// controller sends (client-go's own defaults, 5 and 10, make a storm's
	// releases wait on the client side).
	KubeAPIQPS   float32
	KubeAPIBurst int
	// MetricsSecure serves /metrics over HTTPS to the requests the API
	// server authenticates (TokenReview) and authorizes
	// (SubjectAccessReview); MetricsCertFile and MetricsKeyFile hold its
	// certificate, self-signed at start when both are empty.
	MetricsSecure   bool
	MetricsCertFile string
	MetricsKeyFile  string
	// ConfigReloadInterval is how often the config file is read for a
	// change, applied live (reload.go); 0 turns reloading off.
	ConfigReloadInterval time.Duration

	// Version is the build's version, for the log and the user agent;
	// Revision its VCS revision. Both label liberator_build_info.
	Version  string
	Revision string
	// LogOutput receives the log (the command's standard error).
	LogOutput io.Writer

	// flags are the flags Load applied, applied again over every reload;
	// configHash is the hash of the file content Load read ("" when the
	// file changed while it was read: the first poll loads it again).
	flags      *pflag.FlagSet
	configHash string
}

// AddFlags declares the controller's flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigPath, "config", "", "path of the ControllerConfig file (defaults apply when empty)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path of a kubeconfig (in-cluster config when empty and KUBECONFIG is unset)")
	fs.StringVar(&o.KubeContext, "context", "", "kubeconfig context to use")
	fs.IntVarP(&o.Verbosity, "v", "v", 0, "log verbosity")
	logging.AddFlag(fs, &o.LogFormat)
	fs.DurationVar(&o.UnhealthyAfter, "unhealthy-after", 0, "overrides unhealthyAfter")
	fs.DurationVar(&o.HealthyDelay, "healthy-delay", 0, "overrides healthyDelay")
	fs.StringVar(&o.ReleaseStrategy, "release-strategy", "", "overrides releaseStrategy (OutOfServiceTaint, DeleteNode, ForceDelete)")
	fs.StringVar(&o.MaxUnhealthy, "max-unhealthy", "", "overrides maxUnhealthy (a count or a percentage)")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent", 0, "overrides maxConcurrent")
	fs.BoolVar(&o.DryRun, "dry-run", false, "overrides dryRun: log and record what would be done, do nothing")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "overrides leaderElection.enabled")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "overrides metricsAddr")
	fs.StringVar(&o.HealthAddr, "health-addr", "", "overrides healthAddr")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", 50, "requests per second the controller may send to the API server")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 100, "requests the controller may send in a burst above --kube-api-qps")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", false, "serve /metrics over HTTPS, only to a bearer token the API server authenticates whose user may get /metrics (the ClusterRole liberator-metrics-reader)")
	fs.StringVar(&o.MetricsCertFile, "metrics-cert-file", "", "PEM certificate of the --metrics-secure endpoint, read again when it changes (a self-signed one is made at start when empty)")
	fs.StringVar(&o.MetricsKeyFile, "metrics-key-file", "", "PEM private key of --metrics-cert-file")
	fs.DurationVar(&o.ConfigReloadInterval, "config-reload-interval", DefaultConfigReloadInterval, "how often the --config file is read for a change, applied live when valid (0: never)")
}

// Load reads the config file and applies the flags of fs that were set. A
// reload of the file while the controller runs goes through Load again.
func (o *Options) Load(fs *pflag.FlagSet) (*config.Config, error) {
	before, _ := contentHash(o.ConfigPath)
	cfg, err := o.load(fs)
	if err != nil {
		return nil, err
	}
	o.flags, o.configHash = fs, before
	if after, _ := contentHash(o.ConfigPath); after != before {
		o.configHash = ""
	}
	return cfg, nil
}

func (o *Options) load(fs *pflag.FlagSet) (*config.Config, error) {
	if err := logging.Validate(o.LogFormat); err != nil {
		return nil, err
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		return nil, fmt.Errorf("--kube-api-qps must be above 0 and --kube-api-burst at least 1 (got %g and %d)", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if (o.MetricsCertFile == "") != (o.MetricsKeyFile == "") || (o.MetricsCertFile != "" && !o.MetricsSecure) {
		return nil, fmt.Errorf("--metrics-cert-file and --metrics-key-file go together, with --metrics-secure")
	}
	if o.ConfigReloadInterval < 0 {
		return nil, fmt.Errorf("--config-reload-interval must not be negative (got %s)", o.ConfigReloadInterval)
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	set := func(name string, f func()) {
		if fs.Changed(name) {
			f()
		}
	}
	set("unhealthy-after", func() { cfg.UnhealthyAfter.Duration = o.UnhealthyAfter })
	set("healthy-delay", func() { cfg.HealthyDelay.Duration = o.HealthyDelay })
	set("release-strategy", func() { cfg.ReleaseStrategy = o.ReleaseStrategy })
	set("max-unhealthy", func() { cfg.MaxUnhealthy = intstr.Parse(o.MaxUnhealthy) })
	set("max-concurrent", func() { cfg.MaxConcurrent = o.MaxConcurrent })
	set("dry-run", func() { cfg.DryRun = o.DryRun })
	set("leader-elect", func() { cfg.LeaderElection.Enabled = o.LeaderElect })
	set("metrics-addr", func() { cfg.MetricsAddr = o.MetricsAddr })
	set("health-addr", func() { cfg.HealthAddr = o.HealthAddr })
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration (file and flags): %w", err)
	}
	return cfg, nil
}

// Logger returns the controller's logger: --log-format and -v, writing to
// LogOutput.
func (o *Options) Logger() (logr.Logger, error) {
	return logging.New(o.LogFormat, o.Verbosity, o.LogOutput)
}
