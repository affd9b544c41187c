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
	"slices"
	"strconv"
	"strings"
	"syscall"

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
