package config

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FieldError names the field that is wrong, the bad value and the fix.
type FieldError struct {
	Field, Value, Want string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: invalid value %s: %s", e.Field, e.Value, e.Want)
}

func bad(field string, value any, want string) error {
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", cut(fmt.Sprint(value), maxValueLen)), Want: want}
}

// problems collects validation errors in the order they are found.
type problems []error

// add records that field has the bad value value, and what it wants instead.
func (p *problems) add(field string, value any, want string) {
	*p = append(*p, bad(field, value, want))
}

// Validate checks every field and returns all problems found, as an
// *Error.
func (c *Config) Validate() error {
	e := &Error{}
	for _, err := range c.check() {
		e.add(err)
	}
	return e.orNil()
}

// check returns every problem found, in the order the fields are checked.
func (c *Config) check() problems {
	var p problems
	c.validateHeader(&p)
	c.validateTimes(&p)
	c.validateSelection(&p)
	c.validateFencing(&p)
	c.validateRetry(&p)
	c.validateLeaderElection(&p)
	c.validateRetention(&p)
	c.validateNames(&p)
	return p
}

// validateHeader checks apiVersion and kind.
func (c *Config) validateHeader(p *problems) {
	if c.APIVersion != APIVersion {
		p.add("apiVersion", c.APIVersion, "must be "+APIVersion)
	}
	if c.Kind != Kind {
		p.add("kind", c.Kind, "must be "+Kind)
	}
}

// positive checks that a duration is above zero.
func (p *problems) positive(field string, d Duration) {
	if d.Duration <= 0 {
		p.add(field, d.Duration, "must be a positive duration such as \"30s\"")
	}
}

// validateTimes checks the top-level durations.
func (c *Config) validateTimes(p *problems) {
	p.positive("unhealthyAfter", c.UnhealthyAfter)
	if c.HealthyDelay.Duration < 0 {
		p.add("healthyDelay", c.HealthyDelay.Duration, "must not be negative")
	}
	p.positive("workloadTimeout", c.WorkloadTimeout)
	if c.FenceCheckInterval.Duration < 0 {
		p.add("fenceCheckInterval", c.FenceCheckInterval.Duration, "must be a duration such as \"1m\", or \"0s\" to turn the check off")
	}
}

// validateSelection checks how nodes are chosen and how many are taken over
// at once: releaseStrategy, maxUnhealthy, maxConcurrent, nodeSelector and
// optOutLabel.
func (c *Config) validateSelection(p *problems) {
	switch c.ReleaseStrategy {
	case StrategyOutOfServiceTaint, StrategyDeleteNode, StrategyForceDelete:
	default:
		p.add("releaseStrategy", c.ReleaseStrategy, "must be one of OutOfServiceTaint, DeleteNode, ForceDelete")
	}
	if _, err := c.MaxUnhealthyOf(100); err != nil {
		p.add("maxUnhealthy", c.MaxUnhealthy.String(), err.Error())
	}
	if c.MaxConcurrent < 1 {
		p.add("maxConcurrent", c.MaxConcurrent, "must be at least 1")
	}
	if _, err := parseSelector(c.NodeSelector); err != nil {
		p.add("nodeSelector", c.NodeSelector, "must be a label selector such as \"role=db\": "+err.Error())
	}
	if c.OptOutLabel == "" {
		p.add("optOutLabel", c.OptOutLabel, "must be a label key")
	} else if _, err := metav1.ParseToLabelSelector(c.OptOutLabel); err != nil {
		p.add("optOutLabel", c.OptOutLabel, "must be a label key: "+err.Error())
	}
}

// validateFencing checks every fence class, in order.
func (c *Config) validateFencing(p *problems) {
	names := map[string]bool{}
	for i := range c.Fencing.Classes {
		validateClass(p, fmt.Sprintf("fencing.classes[%d]", i), &c.Fencing.Classes[i], names)
	}
}

// validateClass checks one fence class, whose field path is f; names holds
// the names of the classes before it.
func validateClass(p *problems, f string, fc *FenceClass, names map[string]bool) {
	if fc.Name == "" {
		p.add(f+".name", fc.Name, "every fence class needs a name")
	} else if names[fc.Name] {
		p.add(f+".name", fc.Name, "fence class names must be unique")
	}
	names[fc.Name] = true
	if sel, err := parseSelector(fc.NodeSelector); err != nil {
		p.add(f+".nodeSelector", fc.NodeSelector, "must be a label selector: "+err.Error())
	} else if key := kubeletSettableKey(sel); key != "" {
		p.add(f+".nodeSelector", fc.NodeSelector, fmt.Sprintf("label key %q can be set by the node's own kubelet, so a node could choose its own fence class; use a key under %s (such as %sliberator-fence), which NodeRestriction keeps kubelets from setting, or nodeNames", key, ProtectedLabelPrefix, ProtectedLabelPrefix))
	}
	switch fc.Provider {
	case ProviderNone:
	case ProviderWait:
		if fc.Wait == nil || fc.Wait.SafeTime.Duration <= 0 {
			p.add(f+".wait.safeTime", "", "the wait provider needs a positive wait.safeTime")
		}
	case ProviderFenceAgent, ProviderRedfish, ProviderAgent:
	default:
		p.add(f+".provider", fc.Provider, "must be one of fence-agent, redfish, agent, wait, none")
		return // the other fields depend on the provider: checking them would only repeat this
	}
	if fc.ReleaseUnproven && fc.Provider != ProviderNone {
		p.add(f+".releaseUnproven", true, fmt.Sprintf("only provider none releases without proof (provider is %s); remove it", fc.Provider))
	}
	validatePowerFence(p, f, fc)
	validateSelfFence(p, f, fc)
	if fc.Timeout.Duration <= 0 {
		p.add(f+".timeout", fc.Timeout.Duration, "must be a positive duration")
	}
}

// validateRetry checks the fence backoff and the API guard.
func (c *Config) validateRetry(p *problems) {
	p.positive("retry.initialBackoff", c.Retry.InitialBackoff)
	if c.Retry.MaxBackoff.Duration < c.Retry.InitialBackoff.Duration {
		p.add("retry.maxBackoff", c.Retry.MaxBackoff.Duration, "must be at least retry.initialBackoff")
	}
	if c.Retry.MaxAttempts < 0 {
		p.add("retry.maxAttempts", c.Retry.MaxAttempts, "must be 0 (no limit) or more")
	}
	if c.APIGuard.FailureThreshold < 1 {
		p.add("apiGuard.failureThreshold", c.APIGuard.FailureThreshold, "must be at least 1")
	}
}

// validateLeaderElection checks the Lease settings when leader election is
// on.
func (c *Config) validateLeaderElection(p *problems) {
	le := c.LeaderElection
	if !le.Enabled {
		return
	}
	if le.Namespace == "" || le.Name == "" {
		p.add("leaderElection", le.Namespace+"/"+le.Name, "namespace and name are required")
	}
	if !(le.LeaseDuration.Duration > le.RenewDeadline.Duration && le.RenewDeadline.Duration > le.RetryPeriod.Duration && le.RetryPeriod.Duration > 0) {
		p.add("leaderElection", fmt.Sprintf("%v/%v/%v", le.LeaseDuration.Duration, le.RenewDeadline.Duration, le.RetryPeriod.Duration), "need leaseDuration > renewDeadline > retryPeriod > 0")
	}
}

// validateRetention checks the bounds on closed Takeovers.
func (c *Config) validateRetention(p *problems) {
	r := c.Retention
	if r.PerNode < 1 {
		p.add("retention.perNode", r.PerNode, "must be at least 1: a node's last closed Takeover is the record of its last incident")
	}
	if r.Total < 1 {
		p.add("retention.total", r.Total, "must be at least 1")
	}
	if r.MaxAge.Duration < 0 {
		p.add("retention.maxAge", r.MaxAge.Duration, "must be a duration such as \"720h\", or \"0s\" to keep closed Takeovers regardless of age")
	}
}
