package agent

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// Config is what the agent is told: by the command's flags in production,
// by the tests directly.
type Config struct {
	// Node is this node's name.
	Node string
	// Namespace holds the agent Leases.
	Namespace string
	// WatchdogDevice is a watchdog device path, or unix:PATH for the test
	// bed's socket watchdog.
	WatchdogDevice string
	// Bounds are the requested bounds; the watchdog timeout published is
	// the one the device accepts.
	Bounds agentlease.Bounds
	// PeerListen is where the agent answers its peers (UDP host:port);
	// PeerAddress is that address as the peers reach it.
	PeerListen  string
	PeerAddress string
	// PeerKey is the key all agents share (at least MinKeySize bytes).
	PeerKey []byte
	// BootIDFile holds the node's boot ID.
	BootIDFile string
	// HealthAddr serves /healthz, /readyz and /metrics; empty: none.
	HealthAddr string
}

// MembershipInterval is how often a healthy agent lists the agent Leases;
// for a MembershipInterval after the membership last grew (and after its
// start) it lists every SettlingInterval, so that agents started one after
// another soon agree on the quorum.
const (
	MembershipInterval = 30 * time.Second
	SettlingInterval   = 5 * time.Second
)

// StopTimeout bounds a clean stop's publication of armed=false.
const StopTimeout = 5 * time.Second

// Validate says, in one line naming the flag, what makes the configuration
// unusable.
func (c *Config) Validate() error {
	b := c.Bounds
	switch {
	case c.Node == "":
		return fmt.Errorf("--node is empty: pass it or set NODE_NAME")
	case len(c.Node) > maxNameSize:
		return fmt.Errorf("--node %q is longer than %d bytes", c.Node, maxNameSize)
	case c.Namespace == "":
		return fmt.Errorf("--namespace is empty")
	case c.WatchdogDevice == "" || c.WatchdogDevice == SocketPrefix:
		return fmt.Errorf("--watchdog-device %q names no device", c.WatchdogDevice)
	case len(c.PeerKey) < MinKeySize:
		return fmt.Errorf("--peer-key-file: the key has %d bytes, want at least %d", len(c.PeerKey), MinKeySize)
	case c.PeerAddress == "":
		return fmt.Errorf("--peer-address is empty and cannot be derived: pass it, or set POD_IP or HOST_IP")
	}
	if _, err := wholeSeconds(b.WatchdogTimeout); err != nil {
		return fmt.Errorf("--watchdog-timeout %s: must be a whole number of seconds", b.WatchdogTimeout)
	}
	if err := checkBounds(b); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.PeerAddress); err != nil {
		return fmt.Errorf("--peer-address %q is not host:port", c.PeerAddress)
	}
	if _, err := net.ResolveUDPAddr("udp", c.PeerListen); err != nil {
		return fmt.Errorf("--peer-listen %q is not host:port", c.PeerListen)
	}
	return nil
}

// checkBounds applies agentlease.Bounds.Validate and the agent's own rule
// on the watchdog timeout: it must exceed the longest gap between two feeds
// of a healthy agent during an API outage (a check interval of waiting,
// then a round of questions and a renewal attempt of at most one more
// check interval). It is checked on the requested bounds and again on
// the timeout the device accepted.
func checkBounds(b agentlease.Bounds) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("invalid bounds (--watchdog-timeout, --check-interval, --renew-interval, --api-timeout, --peer-timeout): %w", err)
	}
	if min := 2*b.CheckInterval + b.PeerTimeout; b.WatchdogTimeout < min {
		return fmt.Errorf("watchdog timeout %s must be at least twice the check interval %s plus the peer timeout %s (%s), or the watchdog fires between two feeds",
			b.WatchdogTimeout, b.CheckInterval, b.PeerTimeout, min)
	}
	return nil
}

// DefaultPeerAddress is the address peers reach this agent at: the listen
// address when it names a host, else $POD_IP or $HOST_IP with its port.
func DefaultPeerAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	for _, env := range []string{"POD_IP", "HOST_IP"} {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return net.JoinHostPort(v, port)
		}
	}
	return ""
}

// ReadBootID reads the node's boot ID.
func ReadBootID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--boot-id-file: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("--boot-id-file %s is empty", path)
	}
	return id, nil
}

// callTimeout bounds every API call, and a whole renewal attempt (its read
// and its write together): one check interval.
func (c *Config) callTimeout() time.Duration { return c.Bounds.CheckInterval }
