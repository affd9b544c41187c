//go:build !linux

package agent

import "fmt"

func openDevice(path string) (Watchdog, error) {
	return nil, fmt.Errorf("watchdog device %s: watchdog devices are supported on Linux only (use unix:PATH for a socket watchdog)", path)
}
