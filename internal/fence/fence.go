// Package fence proves that a failed node is off before its workloads are
// released. Each provider implements Fencer.
package fence

import (
	"context"
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

// Target is the node to fence and what is known of the incident.
type Target struct {
	Node string
	// Class is the node's fence class from the configuration.
	Class config.FenceClass
	// DetectedAt is when the incident was detected.
	DetectedAt time.Time
	// Now is the current time.
	Now time.Time
}

// Result is the outcome of a successful fence call.
type Result struct {
	// Done is true when the node is proven off (or, for the none provider,
	// when the policy accepts it unproven). When false, RetryAfter says when
	// to call again.
	Done       bool
	RetryAfter time.Duration
	// PowerOff is true when the node's power was cut, so its return must
	// show a new bootID.
	PowerOff bool
	// Unsafe is true when nothing proved the node off (provider none).
	Unsafe bool
	// Output is what the provider reported, with secrets redacted.
	Output string
}

// Fencer fences one node. Fence must be idempotent: calling it again for a
// node already fenced succeeds.
type Fencer interface {
	Fence(ctx context.Context, t Target) (Result, error)
}

// For returns the Fencer for a fence class.
func For(c config.FenceClass) (Fencer, error) {
	switch c.Provider {
	case config.ProviderNone:
		return None{}, nil
	case config.ProviderWait:
		if c.Wait == nil {
			return nil, fmt.Errorf("fence class %q: the wait provider needs wait.safeTime", c.Name)
		}
		return Wait{SafeTime: c.Wait.SafeTime.Duration}, nil
	default:
		return nil, fmt.Errorf("fence class %q: unknown provider %q", c.Name, c.Provider)
	}
}

// None fences nothing. It exists for node classes whose operators state in
// the configuration that no fencing is needed (for example nodes whose
// workloads use no shared storage). Every use is logged and evented as
// unsafe.
type None struct{}

// Fence reports success at once, marked unsafe.
func (None) Fence(context.Context, Target) (Result, error) {
	return Result{Done: true, Unsafe: true, Output: "provider none: the node was not proven off (policy accepts this for its class)"}, nil
}

// Wait fences by waiting out a safe time after detection: long enough for a
// node that lost contact to have been reset by its own watchdog.
type Wait struct {
	SafeTime time.Duration
}

// Fence succeeds once SafeTime has passed since detection; before that it
// asks to be called again.
func (w Wait) Fence(_ context.Context, t Target) (Result, error) {
	left := t.DetectedAt.Add(w.SafeTime).Sub(t.Now)
	if left > 0 {
		return Result{RetryAfter: left, Output: fmt.Sprintf("waiting %s more of the %s safe time", left.Round(time.Millisecond), w.SafeTime)}, nil
	}
	return Result{Done: true, Output: fmt.Sprintf("safe time of %s passed since detection", w.SafeTime)}, nil
}
