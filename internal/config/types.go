// Package config holds liberator's versioned controller configuration: the
// types (types.go), their defaults (defaults.go), reading a config file
// (load.go) and validation (validate.go).
package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	// ProviderAgent fences with the liberator agent on the node: its
	// watchdog resets the node (docs/design.md, "Self-fencing").
	ProviderAgent = "agent"
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
	// Each is host:port (":8080" listens on every address); they differ.
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
	// Retention bounds the closed (Recovered) Takeovers kept as the record
	// of past incidents; the leader deletes the oldest beyond it. An open
	// Takeover is never deleted.
	Retention Retention `json:"retention"`
}

// Retention bounds the closed Takeovers kept, oldest deleted first (by the
// time each was closed).
type Retention struct {
	// PerNode is how many closed Takeovers of each node are kept.
	PerNode int `json:"perNode"`
	// Total is how many closed Takeovers are kept across all nodes.
	Total int `json:"total"`
	// MaxAge deletes a closed Takeover this long after it closed, whatever
	// the counts; "0s" keeps them regardless of age.
	MaxAge Duration `json:"maxAge"`
}

// Fencing maps node classes to fence providers. The first class whose
// selector matches a node wins; a node no class matches is unfenceable and is
// never released.
type Fencing struct {
	Classes []FenceClass `json:"classes"`
}

// FenceClass is one class of nodes and how they are fenced.
type FenceClass struct {
	// Name names the class in events and the Takeover (spec.fenceClass): a
	// DNS label (lower-case letters, digits and '-').
	Name string `json:"name"`
	// NodeSelector is a label selector; empty matches every node.
	NodeSelector string `json:"nodeSelector"`
	// NodeNames matches nodes by name (in addition to NodeSelector).
	NodeNames []string `json:"nodeNames"`
	// Provider is "fence-agent", "redfish", "agent", "wait" or "none".
	// A none class has no automatic fence: its failed nodes wait until an
	// operator states that they are off (liberator confirm-off NODE).
	Provider string `json:"provider"`
	// ReleaseUnproven (provider none only) releases the class's failed
	// nodes at once without any proof that they are off (phase Fenced,
	// reason FencedUnsafe, a Warning event each time): a standing
	// statement that its nodes need no fencing, for nodes without shared
	// storage.
	ReleaseUnproven bool `json:"releaseUnproven,omitempty"`
	// Wait configures the wait provider.
	Wait *WaitFence `json:"wait,omitempty"`
	// SelfFence configures the agent provider (the liberator agent's
	// watchdog); its fields take their defaults when left out.
	SelfFence *SelfFence `json:"selfFence,omitempty"`
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

// SelfFence is what the agent provider accepts from the liberator agents of
// its class's nodes.
type SelfFence struct {
	// Margin is added to every bound an agent publishes, for the rates of
	// the controller's, the agent's and the watchdog's clocks and for how
	// late a watch event may reach the controller. At least 1s and 3% of
	// maxIsolation.
	Margin Duration `json:"margin"`
	// MaxIsolation is the longest isolation bound, plus margin, accepted
	// from an agent: how long after its last renewal a cut-off node has
	// been reset by its watchdog. A node whose agent publishes more is not
	// fenceable (its FenceReady condition says so).
	MaxIsolation Duration `json:"maxIsolation"`
}

// SelfFenceOrDefault returns the class's selfFence block with the defaults
// in place of what is left out.
func (fc *FenceClass) SelfFenceOrDefault() SelfFence {
	var sf SelfFence
	if fc.SelfFence != nil {
		sf = *fc.SelfFence
	}
	if sf.Margin.Duration == 0 {
		sf.Margin = Duration{DefaultSelfFenceMargin}
	}
	if sf.MaxIsolation.Duration == 0 {
		sf.MaxIsolation = Duration{DefaultSelfFenceMaxIsolation}
	}
	return sf
}

// Defaults of the agent provider's selfFence block.
const (
	DefaultSelfFenceMargin       = 2 * time.Second
	DefaultSelfFenceMaxIsolation = 60 * time.Second
)

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
