package bed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// A cluster started with Options.Isolated gives each worker a network of
// its own: a network namespace, attached by a veth pair to a Linux bridge
// that belongs to the cluster. The bridge has the address 10.213.SLOT.1, on
// which the kube-apiserver (bound to every address by kwokctl) serves; the
// node with index i has 10.213.SLOT.(10+i). Nodes reach each other over the
// bridge (layer 2, no forwarding). SLOT is unique among the clusters of this
// machine; it is recorded in the cluster directory (netSlotFile) so that
// the next Start removes what a killed test process left behind.
//
// Partitions are real: PartitionAPI adds a blackhole route to the bridge's
// address inside the node's namespace (its peers stay reachable);
// PartitionAll sets the bridge side of its veth down. Heal undoes either.

// netPrefix starts the names of every bridge, veth and namespace the bed
// creates: bridge lbedSLOT, namespaces lbedSLOT-INDEX, host-side veths
// lbedSLOTvINDEX.
const netPrefix = "lbed"

// netSlotFile holds the cluster's slot in its directory.
const netSlotFile = "netslot"

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

// network is a cluster's bridge and slot.
type network struct {
	slot    int
	apiPort string
	// kubeconfig is the admin kubeconfig with the server at the bridge.
	kubeconfig string
}

func (nw *network) bridge() string   { return fmt.Sprintf("%s%d", netPrefix, nw.slot) }
func (nw *network) bridgeIP() string { return fmt.Sprintf("10.213.%d.1", nw.slot) }
func (nw *network) nodeIP(index int) string {
	return fmt.Sprintf("10.213.%d.%d", nw.slot, 10+index)
}
func (nw *network) namespace(index int) string {
	return fmt.Sprintf("%s%d-%d", netPrefix, nw.slot, index)
}
func (nw *network) hostVeth(index int) string {
	return fmt.Sprintf("%s%dv%d", netPrefix, nw.slot, index)
}

// ipCmd runs ip(8) with args.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupNetwork takes a free slot, creates the bridge and writes the admin
// kubeconfig that reaches the API server at the bridge's address.
func (c *Cluster) setupNetwork() error {
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("bed: Isolated nodes need ip(8) from iproute2: %w", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bed: Isolated nodes need root (network namespaces); running as uid %d", os.Geteuid())
	}
	u, err := url.Parse(c.rest.Host)
	if err != nil || u.Port() == "" {
		return fmt.Errorf("bed: API server address %q has no port", c.rest.Host)
	}
	unlock, err := lockFile(filepath.Join(stateRoot(), "net.lock"))
	if err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	defer unlock()
	reapNetworks(c.logf)
	slot, err := freeSlot()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, netSlotFile), []byte(strconv.Itoa(slot)), 0o644); err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	nw := &network{slot: slot, apiPort: u.Port()}
	c.net = nw
	for _, args := range [][]string{
		{"link", "add", nw.bridge(), "type", "bridge"},
		{"addr", "add", nw.bridgeIP() + "/24", "dev", nw.bridge()},
		{"link", "set", nw.bridge(), "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return fmt.Errorf("bed: bridge: %w", err)
		}
	}
	nw.kubeconfig = filepath.Join(c.dir, "node-kubeconfig.yaml")
	if err := rewriteKubeconfig(c.kubeconfig, nw.kubeconfig, "https://"+net.JoinHostPort(nw.bridgeIP(), nw.apiPort)); err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	c.logf("bed: network %s, API server at %s:%s for the isolated nodes", nw.bridge(), nw.bridgeIP(), nw.apiPort)
	return nil
}

// rewriteKubeconfig writes a copy of the kubeconfig at src whose clusters
// point at server, checking the serving certificate against "localhost"
// (kwokctl's certificate names localhost and the addresses the machine had
// when it was made, not the bridge's).
func rewriteKubeconfig(src, dst, server string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", src, err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = server
		if !cl.InsecureSkipTLSVerify {
			cl.TLSServerName = "localhost"
		}
	}
	if err := clientcmd.WriteToFile(*cfg, dst); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", dst, err)
	}
	return nil
}

// freeSlot returns the lowest slot whose bridge does not exist and whose
// subnet no interface of this machine uses. The caller holds net.lock.
func freeSlot() (int, error) {
	used := map[int]bool{}
	for _, s := range bedSlots() {
		used[s] = true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, fmt.Errorf("bed: list addresses: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 213 {
				used[int(ip4[2])] = true
			}
		}
	}
	for s := 1; s < 255; s++ {
		if !used[s] {
			return s, nil
		}
	}
	return 0, errors.New("bed: no free network slot (10.213.1-254.0/24 all in use)")
}

var (
	// A bridge or a host-side veth.
	linkName = regexp.MustCompile(`^` + netPrefix + `(\d+)(v\d+)?$`)
	nsName   = regexp.MustCompile(`^` + netPrefix + `(\d+)-\d+$`)
)

// bedSlots lists the slots that have a bridge, a veth or a namespace on
// this machine.
func bedSlots() []int {
	var out []int
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if m := linkName.FindStringSubmatch(i.Name); m != nil {
			s, _ := strconv.Atoi(m[1])
			out = append(out, s)
		}
	}
	for _, ns := range namespaces() {
		if m := nsName.FindStringSubmatch(ns); m != nil {
			s, _ := strconv.Atoi(m[1])
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// namespaces lists the named network namespaces (ip netns list).
func namespaces() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// reapNetworks removes the bridges and namespaces of slots that no live
// cluster directory claims. The caller holds net.lock.
func reapNetworks(logf func(string, ...any)) {
	claimed := map[int]bool{}
	entries, _ := os.ReadDir(stateRoot())
	for _, e := range entries {
		dir := filepath.Join(stateRoot(), e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, netSlotFile))
		if err != nil || !ownerAlive(dir) {
			continue
		}
		if s, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			claimed[s] = true
		}
	}
	for _, s := range bedSlots() {
		if claimed[s] {
			continue
		}
		removeNetwork(s, logf)
		logf("bed: removed the network of an abandoned cluster (%s%d)", netPrefix, s)
	}
}

// removeNetwork deletes the slot's veths, its namespaces and its bridge.
// (A deleted namespace takes its veths along only once the kernel has
// cleaned it up, which may be later; deleting a veth's host side deletes
// the pair at once.)
func removeNetwork(slot int, logf func(string, ...any)) {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if m := linkName.FindStringSubmatch(i.Name); m != nil && m[1] == strconv.Itoa(slot) && m[2] != "" {
			if err := ipCmd("link", "del", i.Name); err != nil {
				logf("bed: %v", err)
			}
		}
	}
	prefix := fmt.Sprintf("%s%d-", netPrefix, slot)
	for _, ns := range namespaces() {
		if strings.HasPrefix(ns, prefix) {
			killNamespace(ns, logf)
			if err := ipCmd("netns", "del", ns); err != nil {
				logf("bed: %v", err)
			}
		}
	}
	br := fmt.Sprintf("%s%d", netPrefix, slot)
	if _, err := net.InterfaceByName(br); err == nil {
		if err := ipCmd("link", "del", br); err != nil {
			logf("bed: %v", err)
		}
	}
}

// killNamespace kills whatever still runs in the namespace.
func killNamespace(ns string, logf func(string, ...any)) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	var pids []int
	for f := range strings.FieldsSeq(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(pids) > 0 {
		logf("bed: killed %d process(es) left in namespace %s", len(pids), ns)
	}
}

// addNodeNamespace creates the node's namespace and veth pair and gives
// the node its address.
func (nw *network) addNodeNamespace(index int) error {
	ns, veth, ip := nw.namespace(index), nw.hostVeth(index), nw.nodeIP(index)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", veth, "master", nw.bridge()},
		{"link", "set", veth, "up"},
		{"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return fmt.Errorf("bed: namespace %s: %w", ns, err)
		}
	}
	return nil
}

// removeNet deletes the cluster's namespaces and bridge.
func (c *Cluster) removeNet() {
	if c.net == nil {
		return
	}
	unlock, err := lockFile(filepath.Join(stateRoot(), "net.lock"))
	if err != nil {
		c.logf("bed: %v", err)
		return
	}
	defer unlock()
	removeNetwork(c.net.slot, c.logf)
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
