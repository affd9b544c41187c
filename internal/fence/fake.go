package fence

import (
	"context"
	"sync"
)

// Fake is a Fencer for tests: it records calls and returns the configured
// result or error.
type Fake struct {
	mu     sync.Mutex
	Result Result
	Err    error
	Calls  []Target
}

// Fence records the call.
func (f *Fake) Fence(_ context.Context, t Target) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, t)
	return f.Result, f.Err
}

// CallCount returns how many times Fence was called.
func (f *Fake) CallCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.Calls)
}
