package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/liberator-dev/liberator/internal/config"
)

// settings is one configuration as the controller applies it: the
// ControllerConfig and what is derived from it. A reload swaps the whole
// value (SetConfig); a reconcile, a scan, a fence check round and a
// retention pass each read one snapshot from start to end, so that no
// decision mixes two configurations.
type settings struct {
	*config.Config
	selector labels.Selector
}

func newSettings(cfg *config.Config) (*settings, error) {
	sel, err := labels.Parse(cfg.NodeSelector)
	if err != nil {
		return nil, fmt.Errorf("nodeSelector: %w", err)
	}
	return &settings{Config: cfg, selector: sel}, nil
}

// conf returns the configuration in force now. A caller takes it once and
// passes it down (or carries it in its context with withSettings).
func (c *Controller) conf() *settings { return c.cfg.Load() }

type settingsKey struct{}

// withSettings carries the snapshot s to the calls made with the returned
// context.
func withSettings(ctx context.Context, s *settings) context.Context {
	return context.WithValue(ctx, settingsKey{}, s)
}

// confIn returns the snapshot ctx carries (that of the step under way), or
// the configuration in force now when it carries none.
func (c *Controller) confIn(ctx context.Context) *settings {
	if s, ok := ctx.Value(settingsKey{}).(*settings); ok {
		return s
	}
	return c.conf()
}

// Config returns the configuration in force.
func (c *Controller) Config() *config.Config { return c.conf().Config }

// RestartError says that a configuration change cannot be applied to a
// running controller: Field changed from From to To.
type RestartError struct {
	Field, From, To string
}

func (e *RestartError) Error() string {
	return fmt.Sprintf("%s: changed from %s to %s, which needs a restart; the change was not applied",
		e.Field, e.From, e.To)
}

// LiveCheck returns a *RestartError when going from the configuration in
// force to next changes something this controller wired at start and
// cannot change while it runs; nil when next can be applied live.
func (c *Controller) LiveCheck(next *config.Config) error {
	cur := c.Config()
	if cur.APIGuard.FailureThreshold != next.APIGuard.FailureThreshold {
		return &RestartError{"apiGuard.failureThreshold", fmt.Sprint(cur.APIGuard.FailureThreshold), fmt.Sprint(next.APIGuard.FailureThreshold)}
	}
	if cur.FenceCheckInterval != next.FenceCheckInterval {
		// The check loop's ticker (and whether it runs at all) is set when
		// the controller starts leading.
		return &RestartError{"fenceCheckInterval", cur.FenceCheckInterval.String(), next.FenceCheckInterval.String()}
	}
	if cur.LeaderElection.Namespace != next.LeaderElection.Namespace {
		// Credentials Secrets and agent Leases are read there.
		return &RestartError{"leaderElection.namespace", quoted(cur.LeaderElection.Namespace), quoted(next.LeaderElection.Namespace)}
	}
	// The agent Leases are watched, with the largest margin of the agent
	// classes, only when an agent class existed at start.
	found, margin := agentClasses(next)
	switch {
	case found && c.agents == nil:
		return &RestartError{"fencing.classes[].provider", "no class with provider agent", "a class with provider agent"}
	case found && margin != c.agents.margin:
		return &RestartError{"fencing.classes[].selfFence.margin", "a largest agent margin of " + c.agents.margin.String(),
			margin.String()}
	}
	return nil
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

// SetConfig makes next, a configuration that passed config validation, the
// one in force: every decision taken from now on reads it, the steps under
// way finish with the snapshot they took. It refuses, changing nothing, a
// change LiveCheck refuses.
//
// An open incident keeps the fence class and provider its Takeover
// recorded: when the new configuration no longer has that class with that
// provider, the incident is held (Paused, Unfenceable) and never counts as
// fenced, until a configuration brings the class back; an incident already
// Fenced goes on to release, its node having been proven off.
func (c *Controller) SetConfig(next *config.Config) error {
	if err := c.LiveCheck(next); err != nil {
		return err
	}
	s, err := newSettings(next)
	if err != nil {
		return err
	}
	c.health.setBlindAfter(next.UnhealthyAfter.Duration / 2)
	c.cfg.Store(s)
	// Every node is looked at with the new configuration (a node now
	// opted out, say, or a dry run turned off).
	for _, name := range c.nodes.GetStore().ListKeys() {
		c.queue.Add(name)
	}
	return nil
}
