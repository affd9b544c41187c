//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// device is a Linux watchdog device (the kernel's watchdog API:
// WDIOC_SETTIMEOUT, WDIOC_GETTIMEOUT, WDIOC_KEEPALIVE, and "V" written
// before close for the magic close). A kernel built with
// CONFIG_WATCHDOG_NOWAYOUT (or nowayout=1) ignores the magic close: the
// node then resets after every stop of the agent.
type device struct {
	f    *os.File
	path string
}

func openDevice(path string) (Watchdog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open the watchdog device %s: %w", path, err)
	}
	return &device{f: f, path: path}, nil
}

// Arm sets the timeout and reads back the one the driver settled on.
func (d *device) Arm(timeout time.Duration) (time.Duration, error) {
	secs, err := wholeSeconds(timeout)
	if err != nil {
		return 0, err
	}
	fd := int(d.f.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, secs); err != nil {
		return 0, fmt.Errorf("watchdog %s: cannot set the timeout to %ds: %w", d.path, secs, err)
	}
	got, err := unix.IoctlGetUint32(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		return 0, fmt.Errorf("watchdog %s: cannot read the timeout back: %w", d.path, err)
	}
	if got == 0 {
		return 0, fmt.Errorf("watchdog %s: the driver reports a timeout of 0s", d.path)
	}
	return time.Duration(got) * time.Second, d.Feed()
}

// Feed pings the watchdog.
func (d *device) Feed() error {
	if err := unix.IoctlWatchdogKeepalive(int(d.f.Fd())); err != nil {
		return fmt.Errorf("watchdog %s: keepalive: %w", d.path, err)
	}
	return nil
}

// MagicClose writes "V" and closes: the driver disarms the watchdog.
func (d *device) MagicClose() error {
	_, err := d.f.Write([]byte("V"))
	return errors.Join(err, d.f.Close())
}

// Close closes without "V": the watchdog keeps running.
func (d *device) Close() error { return d.f.Close() }
