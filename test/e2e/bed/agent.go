package bed

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// AgentSpec says how the bed runs `liberator agent` on each isolated node.
type AgentSpec struct {
	// Binary is the liberator-agent binary (or liberator: the bed runs it
	// with "agent" as its first argument, which both take).
	Binary string
	// Kubeconfig gives the agent's identity (a ServiceAccount's, say); the
	// bed points a copy of it at the API server's address on the bridge.
	Kubeconfig string
	// Args are more flags, such as a timing profile's.
	Args []string
}

// AgentPeerPort is the port every agent answers its peers on, at its
// node's address; AgentHealthPort serves its /healthz, /readyz, /metrics.
const (
	AgentPeerPort   = 9447
	AgentHealthPort = 9448
)

// agentProc is a running agent.
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Reset is a watchdog reset of a node, on this process's clock: Time is
// when the bed had killed the node's processes, LastFeed when the watchdog
// was last fed, Timeout the watchdog's timeout.
type Reset struct {
	Time, LastFeed time.Time
	Timeout        time.Duration
}

// StartAgents writes the agents' shared peer key and kubeconfig and starts
// an agent on every isolated node that is on; from then on every boot of
// an isolated node starts a new one (PowerOn).
func (c *Cluster) StartAgents(ctx context.Context, spec AgentSpec) error {
	if c.net == nil {
		return errors.New("bed: agents need isolated nodes (Options.Isolated)")
	}
	dir := filepath.Join(c.dir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("bed: peer key: %w", err)
	}
	keyFile := filepath.Join(dir, "peer.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig.yaml")
	server := "https://" + net.JoinHostPort(c.net.bridgeIP(), c.net.apiPort)
	if err := rewriteKubeconfig(spec.Kubeconfig, kubeconfig, server); err != nil {
		return fmt.Errorf("bed: agent kubeconfig: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.agent = &agentSetup{spec: spec, keyFile: keyFile, kubeconfig: kubeconfig}
	for _, name := range c.order {
		n := c.nodes[name]
		if n.ns == "" || n.agent != nil || (n.state != powerOn && n.state != cutOff) {
			continue
		}
		if err := c.startAgent(n); err != nil {
			return err
		}
	}
	return nil
}

// agentSetup is what StartAgents prepared.
type agentSetup struct {
	spec       AgentSpec
	keyFile    string
	kubeconfig string
}

// AgentLog is the path of the log of the node's agents (all boots).
func (c *Cluster) AgentLog(name string) string {
	return filepath.Join(c.dir, "nodes", name+".agent.log")
}

// WatchdogDevice is the --watchdog-device value of the node's agent.
func (c *Cluster) WatchdogDevice(name string) string {
	return "unix:" + filepath.Join(c.dir, "nodes", name+".watchdog")
}

// startAgent starts the node's agent in its namespace. The caller holds
// c.mu.
func (c *Cluster) startAgent(n *simNode) error {
	a := c.agent
	log, err := os.OpenFile(c.AgentLog(n.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bed: agent log of %s: %w", n.name, err)
	}
	defer log.Close()
	ip := n.internalIP()
	args := []string{"netns", "exec", n.ns, a.spec.Binary, "agent",
		"--node", n.name,
		"--kubeconfig", a.kubeconfig,
		"--watchdog-device", c.WatchdogDevice(n.name),
		"--peer-listen", net.JoinHostPort(ip, strconv.Itoa(AgentPeerPort)),
		"--peer-key-file", a.keyFile,
		"--boot-id-file", n.bootIDFile,
		"--health-addr", net.JoinHostPort(ip, strconv.Itoa(AgentHealthPort)),
	}
	args = append(args, a.spec.Args...)
	fmt.Fprintf(log, "==== bed: agent of %s (boot %d) started at %s\n", n.name, n.boots, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "NODE_NAME="+n.name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bed: start agent on %s: %w", n.name, err)
	}
	if err := os.WriteFile(n.agentPIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return fmt.Errorf("bed: record agent pid of %s: %w", n.name, err)
	}
	p := &agentProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	n.agent = p
	c.logf("bed: agent of %s started (pid %d)", n.name, cmd.Process.Pid)
	return nil
}

func (n *simNode) agentPIDFile() string {
	return filepath.Join(filepath.Dir(n.pidFile), n.name+".agent.pid")
}

// killAgent kills the node's agent (SIGKILL to its group) and waits for it.
func (n *simNode) killAgent() error {
	if n.agent == nil {
		return nil
	}
	pid := n.agent.cmd.Process.Pid
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill agent (pid %d): %w", pid, err)
	}
	select {
	case <-n.agent.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("agent (pid %d) did not exit after SIGKILL", pid)
	}
	n.agent = nil
	_ = os.Remove(n.agentPIDFile())
	return nil
}

// KillAgent kills the node's agent, as a crash would; nothing restarts it
// until the node boots again. The node stays on: its watchdog keeps
// running unfed.
func (c *Cluster) KillAgent(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if n.agent == nil {
		return fmt.Errorf("bed: node %s runs no agent", name)
	}
	if err := n.killAgent(); err != nil {
		return fmt.Errorf("bed: %s: %w", name, err)
	}
	c.logf("bed: agent of %s killed", name)
	return nil
}

// AgentRunning reports whether the node's agent process runs.
func (c *Cluster) AgentRunning(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok || n.agent == nil {
		return false
	}
	select {
	case <-n.agent.exited:
		return false
	default:
		return true
	}
}

// KillKubelet kills the node's kwok process while everything else of the
// node (its agent, its workloads) keeps running: the bed records the node
// as cut off.
func (c *Cluster) KillKubelet(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if n.cmd == nil {
		return fmt.Errorf("bed: node %s runs no kwok", name)
	}
	if err := n.kill(); err != nil {
		return fmt.Errorf("bed: kill kubelet of %s: %w", name, err)
	}
	if n.state == powerOn {
		n.state = cutOff
		n.record(cutOff)
	}
	c.logf("bed: kwok (kubelet) of %s killed; its agent and workloads keep running", name)
	return nil
}

// WatchdogArmed reports whether the node's watchdog timer runs.
func (c *Cluster) WatchdogArmed(name string) bool {
	c.mu.Lock()
	n, ok := c.nodes[name]
	c.mu.Unlock()
	return ok && n.watchdog != nil && n.watchdog.Armed()
}

// Resets returns the node's watchdog resets, oldest first.
func (c *Cluster) Resets(name string) []Reset {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[name]; ok {
		return slices.Clone(n.resets)
	}
	return nil
}

// watchdogFired resets the node: its kwok and agent are killed, the bed
// records it as reset (its workloads stopped), and it boots again after
// Options.RebootAfterReset, once it is no longer partitioned.
func (c *Cluster) watchdogFired(name string, lastFeed time.Time, timeout time.Duration) {
	c.mu.Lock()
	n := c.nodes[name]
	var errs []error
	errs = append(errs, n.kill(), n.killAgent())
	n.state = watchdogReset
	n.record(watchdogReset)
	at := n.history[len(n.history)-1].Time
	n.resets = append(n.resets, Reset{Time: at, LastFeed: lastFeed, Timeout: timeout})
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		c.logf("bed: watchdog reset of %s: %v", name, err)
	}
	c.logf("bed: node %s reset by its watchdog (last fed %s before, timeout %s)", name, at.Sub(lastFeed).Round(time.Millisecond), timeout)
	if c.rebootAfter > 0 {
		go c.rebootLater(name)
	}
}

// rebootLater boots a reset node again after the reboot delay, once it is
// no longer partitioned, unless something else booted it meanwhile.
func (c *Cluster) rebootLater(name string) {
	select {
	case <-c.runCtx.Done():
		return
	case <-time.After(c.rebootAfter):
	}
	for {
		c.mu.Lock()
		n := c.nodes[name]
		state, cut := n.state, n.cut
		c.mu.Unlock()
		if state != watchdogReset {
			return
		}
		if cut == Connected {
			break
		}
		select {
		case <-c.runCtx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(c.runCtx, 2*time.Minute)
	defer cancel()
	if err := c.PowerOn(ctx, name); err != nil && c.runCtx.Err() == nil {
		c.logf("bed: boot %s after its watchdog reset: %v", name, err)
	}
}
