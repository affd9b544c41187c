// Package config holds liberator's versioned controller configuration: the
// types, their defaults and their validation, in one place.
package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify the config file format.
const (
	APIVersion = "config.liberator.dev/v1alpha1"
	Kind       = "ControllerConfig"
)

// Fence provider names known to the controller.
const (
	ProviderNone       = "none"
	ProviderWait       = "wait"
	ProviderFenceAgent = "fence-agent"
	ProviderRedfish    = "redfish"
)

// Fence actions of the fence-agent and redfish providers.
const (
	ActionOff    = "off"
	ActionReboot = "reboot"
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
	// nothing is remediated. A percentage rounds down but never below 1, so
	// a single failed node is always handled; a count of 0 stops all
	// remediation.
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
	// FenceCheckInterval is how often the fence path of every eligible node
	// is checked (the provider's status against its BMC) and published as
	// the node condition FenceReady; "0s" turns the check off.
	FenceCheckInterval Duration `json:"fenceCheckInterval"`
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
	// Provider is "fence-agent", "redfish", "wait" or "none".
	Provider string `json:"provider"`
	// Wait configures the wait provider.
	Wait *WaitFence `json:"wait,omitempty"`
	// Timeout bounds one fence call.
	Timeout Duration `json:"timeout"`

	// Agent is the fence agent the fence-agent provider runs: a name such as
	// fence_ipmilan (looked up in PATH and /usr/sbin) or an absolute path.
	Agent string `json:"agent,omitempty"`
	// Address is the BMC's address: a host for fence agents (passed as
	// ip=), a host or an http(s) URL for redfish (https:// when no scheme
	// is given). Nodes may override it.
	Address string `json:"address,omitempty"`
	// Port is the BMC's TCP/UDP port (ipport= for fence agents); 0 means the
	// protocol's default. Nodes may override it.
	Port int `json:"port,omitempty"`
	// Options are passed to the fence agent on its stdin as key=value, for
	// example lanplus: "1" and cipher: "3" for fence_ipmilan. The keys
	// action, ip, ipport, username and password are set by liberator.
	Options map[string]string `json:"options,omitempty"`
	// Action is how the node is fenced: "off" (the default; the node stays
	// off until someone, or powerOnAfterTakeover, turns it on) or "reboot"
	// (off, proven off, then on).
	Action string `json:"action,omitempty"`
	// CredentialsSecret names a Secret in the controller's namespace
	// (leaderElection.namespace, tkr-system) with the keys username and
	// password. It is read when needed, never logged or recorded.
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// SystemID is the redfish ComputerSystem Id (or its @odata.id); empty
	// means the service's only system.
	SystemID string `json:"systemID,omitempty"`
	// InsecureSkipVerify turns off TLS certificate verification for redfish
	// (for labs with self-signed BMC certificates).
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// Nodes gives per-node BMC settings, keyed by node name, so that one
	// class covers many BMCs. A node named here belongs to the class.
	Nodes map[string]NodeFence `json:"nodes,omitempty"`
	// PowerOnAfterTakeover powers a node fenced with action off back on
	// once its workloads are Ready elsewhere, so that it rejoins by itself
	// (with a new bootID).
	PowerOnAfterTakeover bool `json:"powerOnAfterTakeover,omitempty"`
}

// NodeFence is one node's BMC settings; set fields override the class's.
type NodeFence struct {
	// Address is this node's BMC address.
	Address string `json:"address,omitempty"`
	// Port is this node's BMC port.
	Port int `json:"port,omitempty"`
	// Options are merged over the class's options for this node (for
	// example plug: the VM name for fence_vbox).
	Options map[string]string `json:"options,omitempty"`
	// CredentialsSecret names this node's credentials Secret.
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// SystemID is this node's redfish ComputerSystem.
	SystemID string `json:"systemID,omitempty"`
}

// BMC is the resolved BMC of one node: the class's settings with the node's
// overrides applied.
type BMC struct {
	Address           string
	Port              int
	Options           map[string]string
	CredentialsSecret string
	SystemID          string
}

// BMCFor resolves the BMC settings of a node of this class.
func (fc *FenceClass) BMCFor(node string) BMC {
	b := BMC{Address: fc.Address, Port: fc.Port, CredentialsSecret: fc.CredentialsSecret, SystemID: fc.SystemID,
		Options: map[string]string{}}
	for k, v := range fc.Options {
		b.Options[k] = v
	}
	n, ok := fc.Nodes[node]
	if !ok {
		return b
	}
	if n.Address != "" {
		b.Address = n.Address
	}
	if n.Port != 0 {
		b.Port = n.Port
	}
	if n.CredentialsSecret != "" {
		b.CredentialsSecret = n.CredentialsSecret
	}
	if n.SystemID != "" {
		b.SystemID = n.SystemID
	}
	for k, v := range n.Options {
		b.Options[k] = v
	}
	return b
}

// HasPowerFence reports whether the class's provider drives the node's
// power (and so can be checked and can power the node on).
func (fc *FenceClass) HasPowerFence() bool {
	return fc.Provider == ProviderFenceAgent || fc.Provider == ProviderRedfish
}

// WaitFence waits a safe time after detection, long enough for a cut-off
// node's watchdog to have reset it.
type WaitFence struct {
	SafeTime Duration `json:"safeTime"`
}

// Retry is an exponential backoff.
type Retry struct {
	// InitialBackoff is the wait after the first failed fence attempt; it
	// doubles after each further failure.
	InitialBackoff Duration `json:"initialBackoff"`
	// MaxBackoff caps the wait between fence attempts.
	MaxBackoff Duration `json:"maxBackoff"`
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
	// Enabled turns leader election on; turn it off only when a single
	// replica runs.
	Enabled bool `json:"enabled"`
	// Namespace is the namespace of the Lease: the controller's own, where
	// its Role allows the Lease and the fence credentials Secrets.
	Namespace string `json:"namespace"`
	// Name is the name of the Lease; the leader election Role grants update
	// on this name only.
	Name string `json:"name"`
	// LeaseDuration is how long the other replicas wait, after the leader's
	// last renewal, before one of them takes over.
	LeaseDuration Duration `json:"leaseDuration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops acting (and exits).
	RenewDeadline Duration `json:"renewDeadline"`
	// RetryPeriod is the interval between attempts to acquire or renew the
	// Lease.
	RetryPeriod Duration `json:"retryPeriod"`
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
		MetricsAddr:        ":8080",
		HealthAddr:         ":8081",
		WorkloadTimeout:    Duration{10 * time.Minute},
		FenceCheckInterval: Duration{time.Minute},
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
		if fc.Action == "" && fc.HasPowerFence() {
			fc.Action = ActionOff
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
	if c.FenceCheckInterval.Duration < 0 {
		errs = append(errs, bad("fenceCheckInterval", c.FenceCheckInterval.Duration, "must be a duration such as \"1m\", or \"0s\" to turn the check off"))
	}
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
		case ProviderFenceAgent, ProviderRedfish:
		default:
			errs = append(errs, bad(f+".provider", fc.Provider, "must be one of fence-agent, redfish, wait, none"))
		}
		errs = append(errs, validatePowerFence(f, &fc)...)
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
	// A percentage rounds down, but never below one: a single unhealthy
	// node is a failure to handle, not a storm.
	return max(1, int(math.Floor(float64(eligible)*float64(p)/100))), nil
}

// ClassFor returns the fence class for a node, or nil if none matches. A
// class matches the nodes it names (nodeNames, or keys of nodes) and, when
// it has a nodeSelector or names no node at all, the nodes its selector
// matches.
func (c *Config) ClassFor(name string, nodeLabels map[string]string) *FenceClass {
	for i := range c.Fencing.Classes {
		fc := &c.Fencing.Classes[i]
		for _, n := range fc.NodeNames {
			if n == name {
				return fc
			}
		}
		if _, ok := fc.Nodes[name]; ok {
			return fc
		}
		if (len(fc.NodeNames) > 0 || len(fc.Nodes) > 0) && fc.NodeSelector == "" {
			continue
		}
		sel, err := labels.Parse(fc.NodeSelector)
		if err == nil && sel.Matches(labels.Set(nodeLabels)) {
			return fc
		}
	}
	return nil
}

// reservedAgentKeys are the fence-agent stdin keys liberator sets itself.
var reservedAgentKeys = map[string]string{
	"action": "action", "ip": "address", "ipaddr": "address", "ipport": "port",
	"username": "credentialsSecret", "login": "credentialsSecret", "password": "credentialsSecret", "passwd": "credentialsSecret",
}

// validatePowerFence checks the fields of the fence-agent and redfish
// providers, and that no other provider sets them.
func validatePowerFence(f string, fc *FenceClass) []error {
	var errs []error
	if !fc.HasPowerFence() {
		set := []string{}
		for name, isSet := range map[string]bool{
			"agent": fc.Agent != "", "address": fc.Address != "", "port": fc.Port != 0, "options": len(fc.Options) > 0,
			"action": fc.Action != "", "credentialsSecret": fc.CredentialsSecret != "", "systemID": fc.SystemID != "",
			"insecureSkipVerify": fc.InsecureSkipVerify, "nodes": len(fc.Nodes) > 0, "powerOnAfterTakeover": fc.PowerOnAfterTakeover,
		} {
			if isSet {
				set = append(set, name)
			}
		}
		sort.Strings(set)
		for _, name := range set {
			errs = append(errs, bad(f+"."+name, "set", "only the fence-agent and redfish providers take "+name+" (provider is "+fc.Provider+")"))
		}
		return errs
	}
	switch fc.Action {
	case ActionOff, ActionReboot:
	default:
		errs = append(errs, bad(f+".action", fc.Action, "must be off or reboot"))
	}
	if fc.PowerOnAfterTakeover && fc.Action == ActionReboot {
		errs = append(errs, bad(f+".powerOnAfterTakeover", true, "only applies to action off (a reboot turns the node back on by itself)"))
	}
	bmcs := map[string]BMC{"": {Address: fc.Address, Port: fc.Port, Options: fc.Options, CredentialsSecret: fc.CredentialsSecret, SystemID: fc.SystemID}}
	for name, n := range fc.Nodes {
		if name == "" {
			errs = append(errs, bad(f+".nodes", name, "node names must not be empty"))
			continue
		}
		bmcs[name] = BMC(n)
	}
	names := make([]string, 0, len(bmcs))
	for name := range bmcs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := bmcs[name]
		p := f
		if name != "" {
			p = f + ".nodes." + name
		}
		if b.Port < 0 || b.Port > 65535 {
			errs = append(errs, bad(p+".port", b.Port, "must be a port number from 1 to 65535 (0 for the default)"))
		}
		if b.CredentialsSecret != "" {
			if msgs := validation.IsDNS1123Subdomain(b.CredentialsSecret); len(msgs) > 0 {
				errs = append(errs, bad(p+".credentialsSecret", b.CredentialsSecret, "must be a Secret name: "+strings.Join(msgs, "; ")))
			}
		}
		if b.Address != "" {
			if err := checkAddress(fc.Provider, b.Address); err != nil {
				errs = append(errs, bad(p+".address", b.Address, err.Error()))
			}
		}
		keys := make([]string, 0, len(b.Options))
		for k := range b.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := b.Options[k]
			switch {
			case fc.Provider != ProviderFenceAgent:
				errs = append(errs, bad(p+".options."+k, v, "options are for the fence-agent provider only"))
			case !optionKey.MatchString(k):
				errs = append(errs, bad(p+".options", k, "option names are lower-case words such as lanplus or power_wait"))
			case reservedAgentKeys[k] != "":
				if reservedAgentKeys[k] == "credentialsSecret" {
					v = "***" // never echo what may be a password
				}
				errs = append(errs, bad(p+".options."+k, v, "liberator sets "+k+" itself: use the class field "+reservedAgentKeys[k]))
			case strings.ContainsAny(v, "\n\r\x00"):
				first, _, _ := strings.Cut(v, "\n")
				errs = append(errs, bad(p+".options."+k, strings.TrimRight(first, "\r\x00")+"...", "option values must be one line"))
			case k == "method" && v == "cycle" && fc.Action == ActionReboot:
				errs = append(errs, bad(p+".options.method", v, "method cycle resets the node without reading OFF back; use the default (onoff)"))
			}
		}
		if b.SystemID != "" && fc.Provider != ProviderRedfish {
			errs = append(errs, bad(p+".systemID", b.SystemID, "systemID is for the redfish provider only"))
		}
	}
	switch fc.Provider {
	case ProviderFenceAgent:
		switch {
		case fc.Agent == "":
			errs = append(errs, bad(f+".agent", "", "the fence-agent provider needs agent, such as fence_ipmilan"))
		case strings.HasPrefix(fc.Agent, "/"):
			if path.Clean(fc.Agent) != fc.Agent {
				errs = append(errs, bad(f+".agent", fc.Agent, "must be a clean absolute path or an agent name such as fence_ipmilan"))
			}
		case !agentName.MatchString(fc.Agent):
			errs = append(errs, bad(f+".agent", fc.Agent, "must be an agent name such as fence_ipmilan, or an absolute path"))
		}
		if fc.InsecureSkipVerify {
			errs = append(errs, bad(f+".insecureSkipVerify", true, "is for the redfish provider; fence agents take options such as ssl_insecure: \"1\""))
		}
	case ProviderRedfish:
		if fc.Agent != "" {
			errs = append(errs, bad(f+".agent", fc.Agent, "is for the fence-agent provider only"))
		}
		if fc.Address == "" {
			if len(fc.Nodes) == 0 {
				errs = append(errs, bad(f+".address", "", "the redfish provider needs the BMC's address (or per-node addresses under nodes)"))
			}
			for _, name := range names {
				if name != "" && bmcs[name].Address == "" {
					errs = append(errs, bad(f+".nodes."+name+".address", "", "needs an address (the class has none)"))
				}
			}
		}
	}
	return errs
}

var (
	optionKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	agentName = regexp.MustCompile(`^fence_[A-Za-z0-9_]+$`)
)

func checkAddress(provider, a string) error {
	if strings.ContainsAny(a, " \t\n\r\x00") {
		return errors.New("must be a host name or address without spaces")
	}
	if !strings.Contains(a, "://") {
		return nil
	}
	if provider != ProviderRedfish {
		return errors.New("fence agents take a host name or address, not a URL")
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be a host, host:port, or an http(s) URL such as https://10.0.0.5")
	}
	return nil
}
