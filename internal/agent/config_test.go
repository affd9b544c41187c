package agent

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no node", func(c *Config) { c.Node = "" }, "--node is empty"},
		{"short key", func(c *Config) { c.PeerKey = []byte("short") }, "--peer-key-file: the key has 5 bytes, want at least 32"},
		{"no peer address", func(c *Config) { c.PeerAddress = "" }, "--peer-address is empty"},
		{"bad peer address", func(c *Config) { c.PeerAddress = "10.0.0.1" }, `--peer-address "10.0.0.1" is not host:port`},
		{"fractional watchdog timeout", func(c *Config) { c.Bounds.WatchdogTimeout = 1500 * time.Millisecond }, "--watchdog-timeout 1.5s: must be a whole number of seconds"},
		{"watchdog under two checks and a round", func(c *Config) {
			c.Bounds.CheckInterval, c.Bounds.RenewInterval, c.Bounds.PeerTimeout = time.Second, 2*time.Second, time.Second
			c.Bounds.APITimeout, c.Bounds.WatchdogTimeout = 10*time.Second, 2*time.Second
		}, "watchdog timeout 2s must be at least twice the check interval 1s plus the peer timeout 1s"},
		{"API timeout too short", func(c *Config) { c.Bounds.APITimeout = 500 * time.Millisecond }, "API timeout 500ms must be at least twice the renew interval"},
		{"no watchdog", func(c *Config) { c.WatchdogDevice = "unix:" }, `--watchdog-device "unix:" names no device`},
	} {
		c := testConfig(t)
		tc.change(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: %v, want one line containing %q", tc.name, err, tc.want)
		}
	}
}

func TestDefaultPeerAddress(t *testing.T) {
	t.Setenv("POD_IP", "10.1.2.3")
	t.Setenv("HOST_IP", "192.168.0.9")
	for listen, want := range map[string]string{
		"0.0.0.0:9447":    "10.1.2.3:9447",
		":9447":           "10.1.2.3:9447",
		"[::]:9000":       "10.1.2.3:9000",
		"10.0.0.11:9447":  "10.0.0.11:9447",
		"node-a.lan:9447": "node-a.lan:9447",
		"not an address":  "",
	} {
		if got := DefaultPeerAddress(listen); got != want {
			t.Errorf("DefaultPeerAddress(%q) = %q, want %q", listen, got, want)
		}
	}
	t.Setenv("POD_IP", "")
	if got := DefaultPeerAddress("0.0.0.0:9447"); got != "192.168.0.9:9447" {
		t.Errorf("without POD_IP: %q, want HOST_IP's", got)
	}
}

// A watchdog that accepts a timeout too short for the bounds is disarmed
// again (armed=false is what the Lease says) and the agent refuses to
// start, with one line.
func TestStartRefusesAnUnusableAcceptedTimeout(t *testing.T) {
	c := testConfig(t)
	c.Bounds.CheckInterval, c.Bounds.RenewInterval, c.Bounds.PeerTimeout = time.Second, 2*time.Second, time.Second
	c.Bounds.APITimeout, c.Bounds.WatchdogTimeout = 10*time.Second, 10*time.Second
	b := newBed(t, c)
	b.wd.MaxTimeout = 2 * time.Second
	err := b.a.start(b.ctx)
	if err == nil || !strings.Contains(err.Error(), "the watchdog accepted a timeout of 2s instead of 10s") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start: %v", err)
	}
	if _, magic, _ := b.wd.State(); !magic {
		t.Error("the watchdog was not disarmed")
	}
	if got := b.lease().Annotations["agent.liberator.dev/armed"]; got != "false" {
		t.Errorf("armed=%s", got)
	}
}
