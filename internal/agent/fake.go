package agent

import (
	"errors"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Fake is a Watchdog for unit tests. It never resets anything: it records
// on its clock when it was armed and fed, and says whether, and when, a
// real watchdog would have fired.
type Fake struct {
	// Clock is the clock the watchdog's timer runs on.
	Clock clock.PassiveClock
	// MaxTimeout, when set, caps the timeout Arm accepts (as a driver
	// with a short hardware limit does).
	MaxTimeout time.Duration

	mu          sync.Mutex
	armed       bool
	timeout     time.Duration
	feeds       []time.Time
	firedAt     time.Time
	magicClosed bool
	closed      bool
}

// NewFake returns a Fake on clk.
func NewFake(clk clock.PassiveClock) *Fake { return &Fake{Clock: clk} }

// errFakeClosed is returned by calls on a closed Fake.
var errFakeClosed = errors.New("fake watchdog: closed")

// Arm arms the fake and counts as a feed.
func (f *Fake) Arm(timeout time.Duration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errFakeClosed
	}
	if f.MaxTimeout > 0 && timeout > f.MaxTimeout {
		timeout = f.MaxTimeout
	}
	f.checkLocked()
	f.armed, f.timeout = true, timeout
	f.feeds = append(f.feeds, f.Clock.Now())
	return timeout, nil
}

// Feed records a feed (and whether the gap since the last one was already
// too long: a real watchdog would have fired in it).
func (f *Fake) Feed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFakeClosed
	}
	f.checkLocked()
	f.feeds = append(f.feeds, f.Clock.Now())
	return nil
}

// checkLocked records the instant the watchdog fired, if it has.
func (f *Fake) checkLocked() {
	if !f.armed || f.magicClosed || !f.firedAt.IsZero() || len(f.feeds) == 0 {
		return
	}
	if due := f.feeds[len(f.feeds)-1].Add(f.timeout); !f.Clock.Now().Before(due) {
		f.firedAt = due
	}
}

// MagicClose disarms and closes.
func (f *Fake) MagicClose() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFakeClosed
	}
	f.checkLocked()
	f.magicClosed, f.closed = true, true
	return nil
}

// Close closes and leaves the timer running.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFakeClosed
	}
	f.closed = true
	return nil
}

// Fired says whether a real watchdog would have reset the node by now,
// and at which instant.
func (f *Fake) Fired() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkLocked()
	return f.firedAt, !f.firedAt.IsZero()
}

// Feeds returns the instants of every feed (arming included).
func (f *Fake) Feeds() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.feeds...)
}

// State says whether the fake is armed, magic closed, and closed.
func (f *Fake) State() (armed, magicClosed, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed, f.magicClosed, f.closed
}

// Timeout is the accepted timeout.
func (f *Fake) Timeout() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeout
}
