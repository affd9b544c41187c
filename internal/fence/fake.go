package fence

import (
	"context"
	"sync"
)

// Fake is a Fencer, Monitor and PowerOner for tests: it records calls and
// returns the configured results.
type Fake struct {
	mu     sync.Mutex
	Result Result
	Err    error
	Calls  []Target
	// On and StatusErr are what Status returns.
	On        bool
	StatusErr error
	// StatusCalls and PowerOns record those calls; PowerOnErr is returned
	// by PowerOn.
	StatusCalls []Target
	PowerOns    []Target
	PowerOnErr  error
	// NodeErr and NodeOff, when set, answer Status and PowerOn per node
	// (over StatusErr, PowerOnErr and On).
	NodeErr map[string]error
	NodeOff map[string]bool
}

var (
	_ Fencer    = (*Fake)(nil)
	_ Monitor   = (*Fake)(nil)
	_ PowerOner = (*Fake)(nil)
)

// Fence records the call.
func (f *Fake) Fence(_ context.Context, t Target) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, t)
	return f.Result, f.Err
}

// Status records the call.
func (f *Fake) Status(_ context.Context, t Target) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.StatusCalls = append(f.StatusCalls, t)
	if f.NodeErr != nil || f.NodeOff != nil {
		return !f.NodeOff[t.Node], f.NodeErr[t.Node]
	}
	return f.On, f.StatusErr
}

// PowerOn records the call.
func (f *Fake) PowerOn(_ context.Context, t Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.PowerOns = append(f.PowerOns, t)
	if err, ok := f.NodeErr[t.Node]; ok {
		return err
	}
	return f.PowerOnErr
}

// PowerOnNodes returns the nodes PowerOn was called for, in order.
func (f *Fake) PowerOnNodes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.PowerOns))
	for _, t := range f.PowerOns {
		out = append(out, t.Node)
	}
	return out
}

// CallCount returns how many times Fence was called.
func (f *Fake) CallCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.Calls)
}

// Set changes the results under the lock.
func (f *Fake) Set(fn func(f *Fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}
