// Package fence proves that a failed node is off before its workloads are
// released. Each provider implements Fencer.
package fence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

// Target is the node to fence and what is known of the incident.
type Target struct {
	Node string
	// Class is the node's fence class from the configuration.
	Class config.FenceClass
	// Takeover names the incident's Takeover (the agent provider writes it
	// on the agent's Lease as its fence request).
	Takeover string
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

// Monitor is implemented by providers that can read a node's power state
// through its fence path. The fence check runs it for every node ahead of
// any failure, so a broken path (wrong password, unreachable BMC, missing
// agent) is visible before it is needed.
type Monitor interface {
	// Status reports whether the node's power is on. An error means the
	// fence path does not work.
	Status(ctx context.Context, t Target) (on bool, err error)
}

// PowerOner is implemented by providers that can turn a fenced node back on.
type PowerOner interface {
	PowerOn(ctx context.Context, t Target) error
}

// SecretGetter returns the data of the named Secret in the controller's
// namespace. It is called when credentials are needed, never ahead.
type SecretGetter func(ctx context.Context, name string) (map[string][]byte, error)

// ErrSecretNotFound is what a SecretGetter returns (wrapped) for a Secret
// that does not exist.
var ErrSecretNotFound = errors.New("secret not found")

// Factory builds Fencers; it holds what the providers need from outside.
type Factory struct {
	// Secrets reads credentials Secrets; nil makes every class that names a
	// credentialsSecret fail with a clear error.
	Secrets SecretGetter
	// Namespace is where the Secrets live (for messages).
	Namespace string
	// Agent builds the agent provider's Fencer, which needs the
	// controller's view of the agent Leases; nil makes every agent class
	// fail with a clear error.
	Agent func(config.FenceClass) (Fencer, error)
}

// For returns the Fencer for a fence class, with no access to Secrets.
func For(c config.FenceClass) (Fencer, error) { return Factory{}.For(c) }

// For returns the Fencer for a fence class.
func (f Factory) For(c config.FenceClass) (Fencer, error) {
	switch c.Provider {
	case config.ProviderNone:
		return None{}, nil
	case config.ProviderWait:
		if c.Wait == nil {
			return nil, fmt.Errorf("fence class %q: the wait provider needs wait.safeTime", c.Name)
		}
		return Wait{SafeTime: c.Wait.SafeTime.Duration}, nil
	case config.ProviderFenceAgent:
		if c.Agent == "" {
			return nil, fmt.Errorf("fence class %q: the fence-agent provider needs agent, such as fence_ipmilan", c.Name)
		}
		return &Agent{Class: c, Creds: f.creds}, nil
	case config.ProviderRedfish:
		return &Redfish{Class: c, Creds: f.creds}, nil
	case config.ProviderAgent:
		if f.Agent == nil {
			return nil, fmt.Errorf("fence class %q: the agent provider needs the controller's view of the agent Leases", c.Name)
		}
		return f.Agent(c)
	default:
		return nil, fmt.Errorf("fence class %q: unknown provider %q", c.Name, c.Provider)
	}
}

// Credentials are a BMC's user name and password.
type Credentials struct {
	Username, Password string
	// Secrets are every value of the Secret, to be redacted from output.
	Secrets []string
}

// creds reads the named credentials Secret. An empty name gives no
// credentials.
func (f Factory) creds(ctx context.Context, name string) (Credentials, error) {
	if name == "" {
		return Credentials{}, nil
	}
	ns := f.Namespace
	if ns == "" {
		ns = "the controller's namespace"
	}
	if f.Secrets == nil {
		return Credentials{}, fmt.Errorf("credentials Secret %s/%s cannot be read: no Secret access configured", ns, name)
	}
	data, err := f.Secrets(ctx, name)
	if errors.Is(err, ErrSecretNotFound) {
		return Credentials{}, fmt.Errorf("credentials Secret %s/%s not found: create it with the keys username and password", ns, name)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("cannot read credentials Secret %s/%s: %w", ns, name, err)
	}
	c := Credentials{Username: string(data["username"]), Password: string(data["password"])}
	for _, v := range data {
		if len(v) > 0 {
			c.Secrets = append(c.Secrets, string(v))
		}
	}
	if _, ok := data["password"]; !ok {
		return c, fmt.Errorf("credentials Secret %s/%s has no key password (want the keys username and password)", ns, name)
	}
	if _, ok := data["username"]; !ok {
		return c, fmt.Errorf("credentials Secret %s/%s has no key username (want the keys username and password)", ns, name)
	}
	return c, nil
}

// None fences nothing: its class has no automatic fence, and its nodes
// are released only once an operator states that they are off (liberator
// confirm-off), unless the class says releaseUnproven: true, a standing
// statement that no fencing is needed (for example nodes whose workloads
// use no shared storage). Every such release is logged and evented as
// unsafe.
type None struct{}

// Fence reports success at once, marked unsafe, for a class with
// releaseUnproven; for any other it fails: nothing proves the node off.
func (None) Fence(_ context.Context, t Target) (Result, error) {
	if !t.Class.ReleaseUnproven {
		return Result{}, fmt.Errorf("provider none has no automatic fence (class %s): the node is released once an operator who has made sure that it is off runs liberator confirm-off %s", t.Class.Name, t.Node)
	}
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

// confirmOff reads the power state through read until it reports off: every
// poll (default 200 ms), for at most confirm (default 10 s, and never beyond
// ctx's deadline). It returns how many reads it made, the window it
// allowed, the last reading when it never saw off, and whether it did.
func confirmOff(ctx context.Context, confirm, poll time.Duration, read func(context.Context) (off bool, last string)) (reads int, window time.Duration, last string, ok bool) {
	if confirm <= 0 {
		confirm = 10 * time.Second
	}
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	if dl, has := ctx.Deadline(); has && time.Until(dl) < confirm {
		confirm = time.Until(dl).Round(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, confirm)
	defer cancel()
	for {
		reads++
		off, l := read(cctx)
		if off {
			return reads, confirm, "", true
		}
		last = l
		select {
		case <-cctx.Done():
			return reads, confirm, last, false
		case <-time.After(poll):
		}
	}
}
