//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// TestAgentBedPartitions proves the isolated nodes' partitions and the
// watchdog device are real, without liberator: a node in its namespace
// renews its Lease over the bridge; cut off from everything its Lease
// stops, healed it renews again; cut off from the API only, it cannot open
// a connection to the API server, while UDP between its namespace and a
// peer's still passes both ways; a watchdog that is not fed resets its
// node (kwok killed, "reset" in the node's history, back later with a new
// boot ID), one closed with the magic close does not.
func TestAgentBedPartitions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := bed.Start(ctx, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease, Isolated: true,
		RebootAfterReset: 8 * time.Second, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	b := partitionCheck{t: t, c: c}
	w1, w2 := "worker-1", "worker-2"
	for _, n := range []string{w1, w2} {
		if !c.Isolated(n) || !strings.HasPrefix(c.NodeIP(n), "10.213.") {
			t.Fatalf("%s: isolated %v, address %s; want a namespace on 10.213.x", n, c.Isolated(n), c.NodeIP(n))
		}
		if got := b.internalIP(n); got != c.NodeIP(n) {
			t.Errorf("Node %s reports InternalIP %s, want its namespace's %s", n, got, c.NodeIP(n))
		}
	}
	if c.Isolated(bed.ControlPlaneNode) {
		t.Errorf("the control-plane node is isolated; want it in the root namespace")
	}
	b.renews(w1, "before any cut")

	// Cut off from everything, then healed.
	if err := c.Partition(w1, bed.PartitionAll); err != nil {
		t.Fatal(err)
	}
	b.stalls(w1, 8*time.Second)
	if b.udp(w2, w1) == nil {
		t.Errorf("UDP from %s reached %s while %s was cut off from everything", w2, w1, w1)
	}
	if err := c.Heal(w1); err != nil {
		t.Fatal(err)
	}
	b.renews(w1, "after healing a full cut")

	// Cut off from the API only: peers still reachable.
	if err := c.Partition(w1, bed.PartitionAPI); err != nil {
		t.Fatal(err)
	}
	if err := b.dialAPI(w1); err == nil {
		t.Errorf("%s opened a connection to the API server at %s while cut off from it", w1, c.APIAddress())
	}
	if err := b.dialAPI(w2); err != nil {
		t.Errorf("%s, not cut off, cannot reach the API server: %v", w2, err)
	}
	b.stalls(w1, 8*time.Second)
	for _, pair := range [][2]string{{w2, w1}, {w1, w2}} {
		if err := b.udp(pair[0], pair[1]); err != nil {
			t.Errorf("UDP from %s to %s while %s is cut off from the API only: %v", pair[0], pair[1], w1, err)
		}
	}
	if c.PoweredOn(w1) || !c.StillRunning(w1) {
		t.Errorf("%s while cut off: PoweredOn %v, StillRunning %v; want false, true", w1, c.PoweredOn(w1), c.StillRunning(w1))
	}
	if err := c.Heal(w1); err != nil {
		t.Fatal(err)
	}
	b.renews(w1, "after healing an API cut")
	b.watchdogs(w1, w2)
}

// partitionCheck holds the bed checks of TestAgentBedPartitions.
type partitionCheck struct {
	t *testing.T
	c *bed.Cluster
}

func (b partitionCheck) internalIP(node string) string {
	n, err := b.c.Client().CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func (b partitionCheck) renewTime(node string) time.Time {
	l, err := b.c.Client().CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), node, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

// renews waits up to 15 s for the node's Lease to be renewed twice.
func (b partitionCheck) renews(node, when string) {
	b.t.Helper()
	first, seen := b.renewTime(node), 0
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && seen < 2 {
		time.Sleep(500 * time.Millisecond)
		if rt := b.renewTime(node); rt.After(first) {
			first, seen = rt, seen+1
		}
	}
	if seen < 2 {
		b.t.Fatalf("the Lease of %s was not renewed %s (kwok log %s)", node, when, b.c.NodeLog(node))
	}
	b.t.Logf("%s renews its Lease %s", node, when)
}

// stalls checks that the node's Lease is not renewed for d (its kwok
// renews every 2.5 s).
func (b partitionCheck) stalls(node string, d time.Duration) {
	b.t.Helper()
	time.Sleep(time.Second) // a renewal in flight at the cut
	first := b.renewTime(node)
	time.Sleep(d)
	if rt := b.renewTime(node); !rt.Equal(first) {
		b.t.Fatalf("the Lease of %s was renewed at %s while cut off", node, rt.Format(time.RFC3339Nano))
	}
}

// dialAPI opens a TCP connection to the API server from the node's
// namespace.
func (b partitionCheck) dialAPI(node string) error {
	return b.c.InNode(node, func() error {
		conn, err := net.DialTimeout("tcp", b.c.APIAddress(), 2*time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// udp sends a datagram from one node's namespace to another's and returns
// nil once it arrived.
func (b partitionCheck) udp(from, to string) error {
	var ln *net.UDPConn
	if err := b.c.InNode(to, func() error {
		var err error
		ln, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(b.c.NodeIP(to)), Port: 0})
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	var conn *net.UDPConn
	if err := b.c.InNode(from, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, ln.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	msg := fmt.Sprintf("from %s at %d", from, time.Now().UnixNano())
	buf := make([]byte, 128)
	for range 5 {
		if _, err := conn.Write([]byte(msg)); err != nil {
			continue
		}
		_ = ln.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := ln.ReadFromUDP(buf); err == nil && string(buf[:n]) == msg {
			return nil
		}
	}
	return fmt.Errorf("no datagram from %s (%s) arrived at %s (%s)", from, conn.LocalAddr(), to, ln.LocalAddr())
}

// watchdogs feeds the first node's watchdog, then stops: the bed resets
// the node and boots it again with a new boot ID. The second node's
// watchdog is closed with the magic close: nothing happens.
func (b partitionCheck) watchdogs(starved, closed string) {
	t, c := b.t, b.c
	bootBefore := b.bootID(starved)
	w := b.openWatchdog(starved, 2)
	for range 4 {
		time.Sleep(time.Second)
		fmt.Fprintln(w, "keepalive")
	}
	if len(c.Resets(starved)) != 0 {
		t.Fatalf("%s was reset although its watchdog was fed", starved)
	}
	fed := time.Now()
	m := b.openWatchdog(closed, 2)
	fmt.Fprintln(m, "V")
	m.Close()
	b.waitFor("the watchdog reset of "+starved, 10*time.Second, func() bool { return len(c.Resets(starved)) == 1 })
	r := c.Resets(starved)[0]
	t.Logf("%s reset %s after its last feed (timeout %s), %s after the test's", starved, r.Time.Sub(r.LastFeed).Round(time.Millisecond), r.Timeout, r.Time.Sub(fed).Round(time.Millisecond))
	if r.Timeout != 2*time.Second || r.Time.Sub(r.LastFeed) < 2*time.Second || r.Time.Sub(r.LastFeed) > 3*time.Second {
		t.Errorf("reset %+v: want 2-3 s after the last feed with timeout 2s", r)
	}
	h := c.History(starved)
	if last := h[len(h)-1]; last.State != "reset" || !last.Off() {
		t.Errorf("history of %s ends %+v, want a reset", starved, last)
	}
	b.stalls(starved, 4*time.Second)
	// Back after RebootAfterReset (8 s), with a new boot ID that its boot
	// ID file holds too.
	b.waitFor(starved+" back on", 30*time.Second, func() bool { return c.PoweredOn(starved) })
	after := b.bootID(starved)
	if after == bootBefore {
		t.Errorf("%s came back with its old boot ID %s", starved, after)
	}
	raw, err := os.ReadFile(c.Dir() + "/nodes/" + starved + ".boot_id")
	if err != nil || strings.TrimSpace(string(raw)) != after {
		t.Errorf("boot ID file of %s: %q, %v; want the Node's %s", starved, raw, err, after)
	}
	b.renews(starved, "after its reboot")
	time.Sleep(time.Second)
	if n := len(c.Resets(closed)); n != 0 || c.WatchdogArmed(closed) || !c.PoweredOn(closed) {
		t.Errorf("%s after the magic close: %d resets, armed %v, on %v; want 0, false, true", closed, n, c.WatchdogArmed(closed), c.PoweredOn(closed))
	}
}

// openWatchdog opens the node's watchdog device and sets its timeout.
func (b partitionCheck) openWatchdog(node string, secs int) net.Conn {
	b.t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(b.c.WatchdogDevice(node), "unix:"))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "timeout %d\n", secs)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := fmt.Sprintf("timeout %d\n", secs); err != nil || line != want {
		b.t.Fatalf("watchdog of %s answered %q, %v; want %q", node, line, err, want)
	}
	if !b.c.WatchdogArmed(node) {
		b.t.Fatalf("watchdog of %s not armed once opened", node)
	}
	return conn
}

func (b partitionCheck) bootID(node string) string {
	n, err := b.c.Client().CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	return n.Status.NodeInfo.BootID
}

func (b partitionCheck) waitFor(what string, timeout time.Duration, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
