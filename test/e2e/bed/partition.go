package bed

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Partition is how a node is cut off.
type Partition int

const (
	// Connected: not cut off.
	Connected Partition = iota
	// PartitionAPI: the node's namespace has a blackhole route to the API
	// address; its peers still reach it and it reaches them.
	PartitionAPI
	// PartitionAll: the bridge side of the node's veth is down; nothing
	// reaches the node and it reaches nothing.
	PartitionAll
)

func (p Partition) String() string {
	switch p {
	case PartitionAPI:
		return "cut off from the API"
	case PartitionAll:
		return "cut off from everything"
	}
	return "connected"
}

// Isolated reports whether the node lives in a network namespace of its own.
func (c *Cluster) Isolated(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	return ok && n.ns != ""
}

// NodeIP is the node's address: its namespace's for an isolated node.
func (c *Cluster) NodeIP(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return ""
	}
	return n.internalIP()
}

// APIAddress is host:port of the API server as the isolated nodes reach it.
func (c *Cluster) APIAddress() string {
	if c.net == nil {
		return ""
	}
	return net.JoinHostPort(c.net.bridgeIP(), c.net.apiPort)
}

// Partition cuts an isolated node off as p says, while its kwok (and
// agent) keep running: the bed records the node as cut off, its workloads
// still running. Heal reconnects it.
func (c *Cluster) Partition(name string, p Partition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if n.ns == "" {
		return fmt.Errorf("bed: node %s is not isolated (Options.Isolated)", name)
	}
	if n.cut != Connected {
		return fmt.Errorf("bed: node %s is already %s", name, n.cut)
	}
	switch p {
	case PartitionAPI:
		err = ipCmd("-n", n.ns, "route", "add", "blackhole", c.net.bridgeIP()+"/32")
	case PartitionAll:
		err = ipCmd("link", "set", c.net.hostVeth(n.index), "down")
	default:
		return fmt.Errorf("bed: partition %d is not PartitionAPI or PartitionAll", p)
	}
	if err != nil {
		return fmt.Errorf("bed: partition %s: %w", name, err)
	}
	n.cut = p
	if n.state == powerOn {
		n.state = cutOff
		n.record(cutOff)
	}
	c.logf("bed: node %s is %s", name, p)
	return nil
}

// Heal undoes Partition. A node whose kwok still runs is on again.
func (c *Cluster) Heal(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	switch n.cut {
	case PartitionAPI:
		err = ipCmd("-n", n.ns, "route", "del", "blackhole", c.net.bridgeIP()+"/32")
	case PartitionAll:
		err = ipCmd("link", "set", c.net.hostVeth(n.index), "up")
	default:
		return fmt.Errorf("bed: node %s is not partitioned", name)
	}
	if err != nil {
		return fmt.Errorf("bed: heal %s: %w", name, err)
	}
	n.cut = Connected
	if n.state == cutOff && n.cmd != nil {
		n.state = powerOn
		n.record(powerOn)
		if c.volumes != nil {
			c.volumes.nodeUp(name)
		}
	}
	c.logf("bed: node %s is connected again", name)
	return nil
}

// InNode runs fn with the calling goroutine's thread in the isolated
// node's network namespace: sockets fn opens belong to that namespace for
// their whole life.
func (c *Cluster) InNode(name string, fn func() error) error {
	c.mu.Lock()
	n, err := c.node(name)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if n.ns == "" {
		return fmt.Errorf("bed: node %s is not isolated", name)
	}
	target, err := os.Open(filepath.Join("/run/netns", n.ns))
	if err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bed: %w", err)
	}
	defer self.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bed: enter namespace %s: %w", n.ns, err)
	}
	ferr := fn()
	if err := setns(self); err != nil {
		// The thread stays in the node's namespace: leave it locked, so
		// that it ends with this goroutine instead of serving others.
		return fmt.Errorf("bed: leave namespace %s: %w", n.ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// setnsCall is setns(2)'s number; package syscall names it on arm64 only.
var setnsCall = map[string]uintptr{"amd64": 308, "arm64": 268}

func setns(f *os.File) error {
	nr, ok := setnsCall[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("setns: unknown system call number on %s", runtime.GOARCH)
	}
	if _, _, errno := syscall.RawSyscall(nr, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
		return errno
	}
	return nil
}

// isolate gives the node its namespace, address and watchdog device.
func (c *Cluster) isolate(n *simNode) error {
	if err := c.net.addNodeNamespace(n.index); err != nil {
		return err
	}
	n.ns, n.ip = c.net.namespace(n.index), c.net.nodeIP(n.index)
	name := n.name
	w, err := startWatchdog(name, strings.TrimPrefix(c.WatchdogDevice(name), "unix:"),
		func(last time.Time, timeout time.Duration) { c.watchdogFired(name, last, timeout) }, c.logf)
	if err != nil {
		return err
	}
	n.watchdog = w
	return nil
}
