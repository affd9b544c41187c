package agent

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Watchdog is a hardware (or the test bed's) watchdog: once armed, it resets
// the node unless it is fed within its timeout. Opening or arming a
// watchdog feeds it.
type Watchdog interface {
	// Arm sets the timeout and returns the one the device accepted, which
	// is what the agent publishes.
	Arm(timeout time.Duration) (time.Duration, error)
	// Feed restarts the timeout.
	Feed() error
	// MagicClose disarms the watchdog and closes it. Only a clean,
	// deliberate stop that has published armed=false may call it.
	MagicClose() error
	// Close closes the watchdog without disarming it: unless something
	// opens and feeds it again, it resets the node within its timeout.
	Close() error
}

// SocketPrefix selects the test bed's socket watchdog: "unix:PATH".
const SocketPrefix = "unix:"

// OpenWatchdog opens device: a watchdog device such as /dev/watchdog, or
// "unix:PATH" for the test bed's socket watchdog. Opening feeds a watchdog
// that is already running.
func OpenWatchdog(device string) (Watchdog, error) {
	if path, ok := strings.CutPrefix(device, SocketPrefix); ok {
		return DialSocketWatchdog(path, 2*time.Second)
	}
	return openDevice(device)
}

// wholeSeconds is timeout in the whole seconds a watchdog takes.
func wholeSeconds(timeout time.Duration) (int, error) {
	if timeout < time.Second || timeout%time.Second != 0 {
		return 0, fmt.Errorf("watchdog timeout %s is not a whole number of seconds", timeout)
	}
	return int(timeout / time.Second), nil
}

// SocketWatchdog is the client of the test bed's watchdog: a stream unix
// socket on which the agent writes lines. "timeout N" sets the timeout in
// seconds (the server answers "timeout N" with the one it accepted),
// "keepalive" feeds, and "V" before closing disarms (the magic close).
// Closing without "V" leaves the timer running.
type SocketWatchdog struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// DialSocketWatchdog connects to the socket watchdog at path; every
// exchange is bounded by ioTimeout.
func DialSocketWatchdog(path string, ioTimeout time.Duration) (*SocketWatchdog, error) {
	conn, err := net.DialTimeout("unix", path, ioTimeout)
	if err != nil {
		return nil, fmt.Errorf("cannot open the socket watchdog %s: %w", path, err)
	}
	return &SocketWatchdog{conn: conn, r: bufio.NewReader(conn), timeout: ioTimeout}, nil
}

func (w *SocketWatchdog) send(line string) error {
	if err := w.conn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		return err
	}
	_, err := w.conn.Write([]byte(line + "\n"))
	return err
}

// Arm sends "timeout N" and reads the accepted timeout back.
func (w *SocketWatchdog) Arm(timeout time.Duration) (time.Duration, error) {
	secs, err := wholeSeconds(timeout)
	if err != nil {
		return 0, err
	}
	if err := w.send("timeout " + strconv.Itoa(secs)); err != nil {
		return 0, fmt.Errorf("socket watchdog: cannot set the timeout: %w", err)
	}
	line, err := w.r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("socket watchdog: no answer to the timeout: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "timeout" {
		return 0, fmt.Errorf("socket watchdog: answer %q is not \"timeout N\"", strings.TrimSpace(line))
	}
	got, err := strconv.Atoi(f[1])
	if err != nil || got <= 0 {
		return 0, fmt.Errorf("socket watchdog: accepted timeout %q is not a positive count of seconds", f[1])
	}
	return time.Duration(got) * time.Second, nil
}

// Feed sends "keepalive".
func (w *SocketWatchdog) Feed() error { return w.send("keepalive") }

// MagicClose sends "V" and closes the connection.
func (w *SocketWatchdog) MagicClose() error {
	err := w.send("V")
	return errors.Join(err, w.conn.Close())
}

// Close closes the connection and leaves the timer running.
func (w *SocketWatchdog) Close() error { return w.conn.Close() }
