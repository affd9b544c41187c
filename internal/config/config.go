// Package config holds liberator's versioned controller configuration: the
// types, their defaults and their validation, in one place.
package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify the config file format.
const (
	APIVersion = "config.liberator.dev/v1alpha1"
	Kind       = "ControllerConfig"
)

// Fence provider names known to the controller.
const (
	ProviderNone = "none"
	ProviderWait = "wait"
)

// Release strategies.
const (
	StrategyOutOfServiceTaint = "OutOfServiceTaint"
	StrategyDeleteNode        = "DeleteNode"
	StrategyForceDelete       = "ForceDelete"
)

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// UnmarshalJSON accepts "30s", "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("want a duration string such as \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\", got %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// Config is the controller's configuration file.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// UnhealthyAfter is how long a node's Lease must go unrenewed, or its
	// Ready condition stay not True, as measured on the controller's own
	// clock, before the node is taken over.
	UnhealthyAfter Duration `json:"unhealthyAfter"`
	// HealthyDelay is how long a returned node must stay healthy before the
	// taints liberator added are removed.
	HealthyDelay Duration `json:"healthyDelay"`
	// ReleaseStrategy is OutOfServiceTaint, DeleteNode or ForceDelete.
	ReleaseStrategy string `json:"releaseStrategy"`
	// MaxUnhealthy is the storm guard: when more than this many eligible
	// nodes (a count, or a percentage such as "40%") are unhealthy at once,
	// nothing is remediated.
	MaxUnhealthy intstr.IntOrString `json:"maxUnhealthy"`
	// MaxConcurrent bounds the takeovers between detection and release.
	MaxConcurrent int `json:"maxConcurrent"`
	// DryRun logs and records what would be done, and does nothing.
	DryRun bool `json:"dryRun"`
	// NodeSelector is a label selector ("role=db,zone in (a,b)") choosing
	// the nodes liberator watches over; empty means all.
	NodeSelector string `json:"nodeSelector"`
	// OptOutLabel is a label key; a node with this label set to "true" is
	// never taken over.
	OptOutLabel string `json:"optOutLabel"`
	// IncludeControlPlane lets liberator take over control-plane nodes.
	IncludeControlPlane bool `json:"includeControlPlane"`
	// Fencing says how each class of node is fenced.
	Fencing Fencing `json:"fencing"`
	// Retry is the backoff for failed steps.
	Retry Retry `json:"retry"`
	// APIGuard pauses remediation while the controller's own API calls fail.
	APIGuard APIGuard `json:"apiGuard"`
	// LeaderElection keeps two replicas from acting at once.
	LeaderElection LeaderElection `json:"leaderElection"`
	// MetricsAddr serves /metrics; HealthAddr serves /healthz and /readyz.
	MetricsAddr string `json:"metricsAddr"`
	HealthAddr  string `json:"healthAddr"`
	// WorkloadTimeout bounds how long the controller watches for released
	// workloads to come back Ready before it closes that step with a
	// warning.
	WorkloadTimeout Duration `json:"workloadTimeout"`
}

// Fencing maps node classes to fence providers. The first class whose
// selector matches a node wins; a node no class matches is unfenceable and is
// never released.
type Fencing struct {
	Classes []FenceClass `json:"classes"`
}

// FenceClass is one class of nodes and how they are fenced.
type FenceClass struct {
	// Name names the class in events and the Takeover.
	Name string `json:"name"`
	// NodeSelector is a label selector; empty matches every node.
	NodeSelector string `json:"nodeSelector"`
	// NodeNames matches nodes by name (in addition to NodeSelector).
	NodeNames []string `json:"nodeNames"`
	// Provider is "wait" or "none".
	Provider string `json:"provider"`
	// Wait configures the wait provider.
	Wait *WaitFence `json:"wait,omitempty"`
	// Timeout bounds one fence call.
	Timeout Duration `json:"timeout"`
}

// WaitFence waits a safe time after detection, long enough for a cut-off
// node's watchdog to have reset it.
type WaitFence struct {
	SafeTime Duration `json:"safeTime"`
}

// Retry is an exponential backoff.
type Retry struct {
	InitialBackoff Duration `json:"initialBackoff"`
	MaxBackoff     Duration `json:"maxBackoff"`
	// MaxAttempts is how many fence attempts an incident gets; 0 means no
	// limit.
	MaxAttempts int `json:"maxAttempts"`
}

// APIGuard pauses remediation while the controller's API calls fail.
type APIGuard struct {
	// FailureThreshold consecutive failed API calls trip the guard; one
	// success resets it.
	FailureThreshold int `json:"failureThreshold"`
}

// LeaderElection configures the Lease that elects the acting replica.
type LeaderElection struct {
	Enabled       bool     `json:"enabled"`
	Namespace     string   `json:"namespace"`
	Name          string   `json:"name"`
	LeaseDuration Duration `json:"leaseDuration"`
	RenewDeadline Duration `json:"renewDeadline"`
	RetryPeriod   Duration `json:"retryPeriod"`
}

// Default returns the configuration used when the file says nothing.
func Default() *Config {
	return &Config{
		APIVersion:      APIVersion,
		Kind:            Kind,
		UnhealthyAfter:  Duration{40 * time.Second},
		HealthyDelay:    Duration{30 * time.Second},
		ReleaseStrategy: StrategyOutOfServiceTaint,
		MaxUnhealthy:    intstr.FromString("40%"),
		MaxConcurrent:   3,
		OptOutLabel:     "liberator.dev/opt-out",
		Retry: Retry{
			InitialBackoff: Duration{5 * time.Second},
			MaxBackoff:     Duration{5 * time.Minute},
		},
		APIGuard: APIGuard{FailureThreshold: 5},
		LeaderElection: LeaderElection{
			Enabled:       true,
			Namespace:     "tkr-system",
			Name:          "liberator-controller",
			LeaseDuration: Duration{15 * time.Second},
			RenewDeadline: Duration{10 * time.Second},
			RetryPeriod:   Duration{2 * time.Second},
		},
		MetricsAddr:     ":8080",
		HealthAddr:      ":8081",
		WorkloadTimeout: Duration{10 * time.Minute},
	}
}

// Load reads and validates a config file. An empty path gives the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, c.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: cannot read %s: %w", path, err)
	}
	if err := Parse(b, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes b over c (which holds the defaults), rejecting unknown
// fields, and validates the result.
func Parse(b []byte, c *Config) error {
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return fmt.Errorf("%s (fix the YAML; see docs/configuration.md for the fields)", cleanYAMLError(err))
	}
	c.applyClassDefaults()
	return c.Validate()
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	return strings.ReplaceAll(s, "json: unknown field", "unknown field")
}

func (c *Config) applyClassDefaults() {
	for i := range c.Fencing.Classes {
		fc := &c.Fencing.Classes[i]
		if fc.Timeout.Duration == 0 {
			fc.Timeout = Duration{30 * time.Second}
		}
	}
}

// FieldError names the field that is wrong, the bad value and the fix.
type FieldError struct {
	Field, Value, Want string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: invalid value %s: %s", e.Field, e.Value, e.Want)
}

func bad(field string, value any, want string) error {
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", fmt.Sprint(value)), Want: want}
}

// Validate checks every field and returns all problems found.
func (c *Config) Validate() error {
	var errs []error
	if c.APIVersion != APIVersion {
		errs = append(errs, bad("apiVersion", c.APIVersion, "must be "+APIVersion))
	}
	if c.Kind != Kind {
		errs = append(errs, bad("kind", c.Kind, "must be "+Kind))
	}
	positive := func(field string, d Duration) {
		if d.Duration <= 0 {
			errs = append(errs, bad(field, d.Duration, "must be a positive duration such as \"30s\""))
		}
	}
	positive("unhealthyAfter", c.UnhealthyAfter)
	if c.HealthyDelay.Duration < 0 {
		errs = append(errs, bad("healthyDelay", c.HealthyDelay.Duration, "must not be negative"))
	}
	positive("workloadTimeout", c.WorkloadTimeout)
	switch c.ReleaseStrategy {
	case StrategyOutOfServiceTaint, StrategyDeleteNode, StrategyForceDelete:
	default:
		errs = append(errs, bad("releaseStrategy", c.ReleaseStrategy, "must be one of OutOfServiceTaint, DeleteNode, ForceDelete"))
	}
	if _, err := c.MaxUnhealthyOf(100); err != nil {
		errs = append(errs, bad("maxUnhealthy", c.MaxUnhealthy.String(), err.Error()))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, bad("maxConcurrent", c.MaxConcurrent, "must be at least 1"))
	}
	if _, err := labels.Parse(c.NodeSelector); err != nil {
		errs = append(errs, bad("nodeSelector", c.NodeSelector, "must be a label selector such as \"role=db\": "+err.Error()))
	}
	if c.OptOutLabel == "" {
		errs = append(errs, bad("optOutLabel", c.OptOutLabel, "must be a label key"))
	} else if _, err := metav1.ParseToLabelSelector(c.OptOutLabel); err != nil {
		errs = append(errs, bad("optOutLabel", c.OptOutLabel, "must be a label key: "+err.Error()))
	}
	names := map[string]bool{}
	for i, fc := range c.Fencing.Classes {
		f := fmt.Sprintf("fencing.classes[%d]", i)
		if fc.Name == "" {
			errs = append(errs, bad(f+".name", fc.Name, "every fence class needs a name"))
		} else if names[fc.Name] {
			errs = append(errs, bad(f+".name", fc.Name, "fence class names must be unique"))
		}
		names[fc.Name] = true
		if _, err := labels.Parse(fc.NodeSelector); err != nil {
			errs = append(errs, bad(f+".nodeSelector", fc.NodeSelector, "must be a label selector: "+err.Error()))
		}
		switch fc.Provider {
		case ProviderNone:
		case ProviderWait:
			if fc.Wait == nil || fc.Wait.SafeTime.Duration <= 0 {
				errs = append(errs, bad(f+".wait.safeTime", "", "the wait provider needs a positive wait.safeTime"))
			}
		default:
			errs = append(errs, bad(f+".provider", fc.Provider, "must be one of wait, none"))
		}
		if fc.Timeout.Duration <= 0 {
			errs = append(errs, bad(f+".timeout", fc.Timeout.Duration, "must be a positive duration"))
		}
	}
	positive("retry.initialBackoff", c.Retry.InitialBackoff)
	if c.Retry.MaxBackoff.Duration < c.Retry.InitialBackoff.Duration {
		errs = append(errs, bad("retry.maxBackoff", c.Retry.MaxBackoff.Duration, "must be at least retry.initialBackoff"))
	}
	if c.Retry.MaxAttempts < 0 {
		errs = append(errs, bad("retry.maxAttempts", c.Retry.MaxAttempts, "must be 0 (no limit) or more"))
	}
	if c.APIGuard.FailureThreshold < 1 {
		errs = append(errs, bad("apiGuard.failureThreshold", c.APIGuard.FailureThreshold, "must be at least 1"))
	}
	if le := c.LeaderElection; le.Enabled {
		if le.Namespace == "" || le.Name == "" {
			errs = append(errs, bad("leaderElection", le.Namespace+"/"+le.Name, "namespace and name are required"))
		}
		if !(le.LeaseDuration.Duration > le.RenewDeadline.Duration && le.RenewDeadline.Duration > le.RetryPeriod.Duration && le.RetryPeriod.Duration > 0) {
			errs = append(errs, bad("leaderElection", fmt.Sprintf("%v/%v/%v", le.LeaseDuration.Duration, le.RenewDeadline.Duration, le.RetryPeriod.Duration), "need leaseDuration > renewDeadline > retryPeriod > 0"))
		}
	}
	return errors.Join(errs...)
}

// MaxUnhealthyOf resolves MaxUnhealthy against the number of eligible nodes.
func (c *Config) MaxUnhealthyOf(eligible int) (int, error) {
	v := c.MaxUnhealthy
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			return 0, errors.New("must not be negative")
		}
		return int(v.IntVal), nil
	}
	s := v.StrVal
	if !strings.HasSuffix(s, "%") {
		return 0, errors.New("must be a count such as 2 or a percentage such as \"40%\"")
	}
	p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || p < 0 || p > 100 {
		return 0, errors.New("the percentage must be a whole number from 0% to 100%")
	}
	return int(math.Floor(float64(eligible) * float64(p) / 100)), nil
}

// ClassFor returns the fence class for a node, or nil if none matches.
func (c *Config) ClassFor(name string, nodeLabels map[string]string) *FenceClass {
	for i := range c.Fencing.Classes {
		fc := &c.Fencing.Classes[i]
		for _, n := range fc.NodeNames {
			if n == name {
				return fc
			}
		}
		if len(fc.NodeNames) > 0 && fc.NodeSelector == "" {
			continue
		}
		sel, err := labels.Parse(fc.NodeSelector)
		if err == nil && sel.Matches(labels.Set(nodeLabels)) {
			return fc
		}
	}
	return nil
}
