package bed

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// watchdog is the fake watchdog device of one isolated node: a stream unix
// socket that the node's agent opens with --watchdog-device unix:PATH. It
// behaves like /dev/watchdog:
//
//   - connecting opens the device: the timer starts (with defaultTimeout
//     until the agent sets another) or, if it runs already because the
//     last opener closed without the magic close, is fed;
//   - "timeout N\n" sets the timeout to N seconds (clamped to 1..maxTimeout),
//     feeds, and is answered "timeout M\n" with the timeout accepted;
//   - "keepalive\n" feeds (no answer);
//   - "V\n" as the last line before the connection closes is the magic
//     close: the timer stops. Closing without it leaves the timer running;
//   - one opener at a time: a second connection while one is open is
//     answered "busy\n" and closed, as open(2) fails with EBUSY.
//
// When the timer runs out, fire is called once and the device is disarmed
// (the node it belongs to is reset; the next boot opens it afresh).
type watchdog struct {
	node string
	path string
	ln   net.Listener
	fire func(lastFeed time.Time, timeout time.Duration)
	logf func(string, ...any)

	mu       sync.Mutex
	armed    bool
	timeout  time.Duration
	lastFeed time.Time
	timer    *time.Timer
	// gen counts arms, so a stale timer does nothing.
	gen  int
	open net.Conn
}

const (
	defaultWatchdogTimeout = 60 * time.Second
	maxWatchdogTimeout     = 600 * time.Second
)

func startWatchdog(node, path string, fire func(time.Time, time.Duration), logf func(string, ...any)) (*watchdog, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("bed: watchdog of %s: %w", node, err)
	}
	w := &watchdog{node: node, path: path, ln: ln, fire: fire, logf: logf}
	go w.serve()
	return w, nil
}

func (w *watchdog) serve() {
	for {
		conn, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		busy := w.open != nil
		if !busy {
			w.open = conn
			if w.armed {
				w.feedLocked()
			} else {
				w.armLocked(defaultWatchdogTimeout)
			}
		}
		w.mu.Unlock()
		if busy {
			_, _ = conn.Write([]byte("busy\n"))
			conn.Close()
			w.logf("bed: watchdog of %s: second opener refused (busy)", w.node)
			continue
		}
		go w.handle(conn)
	}
}

// handle reads the opener's lines until it closes.
func (w *watchdog) handle(conn net.Conn) {
	defer conn.Close()
	expectClose := false
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		expectClose = line == "V"
		switch {
		case line == "keepalive":
			w.feed(conn)
		case line == "V":
		case strings.HasPrefix(line, "timeout "):
			secs, err := strconv.Atoi(strings.TrimPrefix(line, "timeout "))
			if err != nil {
				_, _ = fmt.Fprintf(conn, "error bad timeout %q\n", line)
				continue
			}
			got := w.setTimeout(conn, time.Duration(secs)*time.Second)
			if got == 0 {
				return
			}
			_, _ = fmt.Fprintf(conn, "timeout %d\n", int(got/time.Second))
		default:
			_, _ = fmt.Fprintf(conn, "error unknown command %q\n", line)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != conn {
		return
	}
	w.open = nil
	if expectClose && w.armed {
		w.armed = false
		w.gen++
		w.timer.Stop()
		w.logf("bed: watchdog of %s: magic close, disarmed", w.node)
	} else if w.armed {
		w.logf("bed: watchdog of %s: closed without the magic close; still running (%s since the last feed of %s)", w.node, time.Since(w.lastFeed).Round(time.Millisecond), w.timeout)
	}
}

// armLocked starts the timer with timeout. The caller holds w.mu.
func (w *watchdog) armLocked(timeout time.Duration) {
	w.armed, w.timeout = true, timeout
	w.gen++
	w.feedLocked()
}

// feedLocked restarts the timer. The caller holds w.mu.
func (w *watchdog) feedLocked() {
	w.lastFeed = time.Now()
	if w.timer != nil {
		w.timer.Stop()
	}
	gen, last, timeout := w.gen, w.lastFeed, w.timeout
	w.timer = time.AfterFunc(timeout, func() { w.expire(gen, last) })
}

// feed feeds the timer for the connection that holds the device.
func (w *watchdog) feed(conn net.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open == conn && w.armed {
		w.feedLocked()
	}
}

// setTimeout sets and returns the accepted timeout, or 0 when conn no
// longer holds the device (it was reset meanwhile).
func (w *watchdog) setTimeout(conn net.Conn, d time.Duration) time.Duration {
	d = min(max(d, time.Second), maxWatchdogTimeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != conn || !w.armed {
		return 0
	}
	w.timeout = d
	w.feedLocked()
	return d
}

// expire fires the reset if the timer of generation gen, fed last at last,
// is still the running one.
func (w *watchdog) expire(gen int, last time.Time) {
	w.mu.Lock()
	if !w.armed || w.gen != gen || !w.lastFeed.Equal(last) {
		w.mu.Unlock()
		return
	}
	w.armed = false
	w.gen++
	timeout := w.timeout
	if w.open != nil {
		w.open.Close()
		w.open = nil
	}
	w.mu.Unlock()
	w.logf("bed: watchdog of %s expired: not fed for %s (timeout %s)", w.node, time.Since(last).Round(time.Millisecond), timeout)
	w.fire(last, timeout)
}

// disarm stops the timer without firing and drops the opener: the node is
// powered off or reboots.
func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	w.gen++
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.open != nil {
		w.open.Close()
		w.open = nil
	}
}

// Armed reports whether the timer runs.
func (w *watchdog) Armed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.armed
}

func (w *watchdog) close() error {
	w.disarm()
	err := w.ln.Close()
	if rerr := os.Remove(w.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}
