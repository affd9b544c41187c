package config

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

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
		Retention:          Retention{PerNode: 5, Total: 100},
	}
}

// applyClassDefaults fills in each fence class's timeout, for the
// fence-agent and redfish providers its action, and for the agent provider
// its selfFence block.
func (c *Config) applyClassDefaults() {
	for i := range c.Fencing.Classes {
		fc := &c.Fencing.Classes[i]
		if fc.Timeout.Duration == 0 {
			fc.Timeout = Duration{30 * time.Second}
		}
		if fc.Action == "" && fc.HasPowerFence() {
			fc.Action = ActionOff
		}
		if fc.Provider == ProviderAgent {
			sf := fc.SelfFenceOrDefault()
			fc.SelfFence = &sf
		}
	}
}
