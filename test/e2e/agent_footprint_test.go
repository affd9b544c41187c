//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// Durations of TestAgentFootprint's two phases.
const (
	footprintIdle   = 60 * time.Second
	footprintOutage = 20 * time.Second
)

// TestAgentFootprint measures the agent as the DaemonSet runs it: the
// binaries of `make build`, bin/liberator-agent on three isolated workers
// with the default bounds, idle for a minute, then through a 20 s stop of
// the API server. It prints, per node, the agent's resident memory (VmRSS
// and RssAnon), its idle CPU (utime+stime over the minute, in % of one
// core), its peer traffic while idle (none is expected: peers are asked only
// when the API does not answer) and during the stop (bytes per second). For
// comparison it runs bin/liberator-agent and `bin/liberator agent` side by
// side on the root network namespace, each alone in a namespace of its own
// (no peers) with a socket watchdog of this test's, and prints their memory.
// The figures are printed, not asserted; the test fails only when a figure
// could not be measured.
func TestAgentFootprint(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, bed.Options{Workers: 3, Isolated: true})
	small, full := footprintBinaries(t, e.root)
	for _, f := range []string{"serviceaccount.yaml", "rbac.yaml"} {
		footprintApplyFile(t, e, filepath.Join(e.root, "config", "components", "agent", f))
	}
	ctx := t.Context()
	kubeconfig, err := e.c.ServiceAccountKubeconfig(ctx, "tkr-system", "liberator-agent")
	if err != nil {
		t.Fatal(err)
	}
	probes := []*footprintProbe{startFootprintProbe(t, e, small, "footprint-small"), startFootprintProbe(t, e, full, "footprint-full", "agent")}
	if err := e.c.StartAgents(ctx, bed.AgentSpec{Binary: small, Kubeconfig: kubeconfig}); err != nil {
		t.Fatal(err)
	}
	nodes := e.c.Nodes()[1:] // the workers; the control plane is first
	var agents []*footprintAgent
	for _, n := range nodes {
		footprintWaitArmed(t, e, "tkr-system", n)
		agents = append(agents, &footprintAgent{node: n, pid: footprintPID(t, small, e.c.WatchdogDevice(n)),
			metrics: "http://" + net.JoinHostPort(e.c.NodeIP(n), strconv.Itoa(bed.AgentHealthPort)) + "/metrics"})
	}
	for _, p := range probes {
		footprintWaitArmed(t, e, p.namespace, p.node)
	}

	// Idle.
	t.Logf("every agent armed %s after the start; idle for %s", time.Since(start).Round(time.Second), footprintIdle)
	for _, a := range agents {
		a.idleStart = a.sample(t, false)
	}
	for _, p := range probes {
		p.cpuStart = footprintCPU(t, p.cmd.Process.Pid)
	}
	time.Sleep(footprintIdle)
	for _, a := range agents {
		a.idleEnd = a.sample(t, true)
	}
	for _, p := range probes {
		p.mem = footprintMemory(t, p.cmd.Process.Pid)
		p.cpuEnd = footprintCPU(t, p.cmd.Process.Pid)
		p.stop()
	}

	// The API server stopped: the agents ask their peers.
	footprintAPIStop(t, e, agents)

	for _, a := range agents {
		fmt.Printf("RESULT agent_footprint node=%s binary=liberator-agent vm_rss_mb=%.1f rss_anon_mb=%.1f rss_file_mb=%.1f vm_hwm_mb=%.1f "+
			"idle_cpu_pct=%.2f idle_peer_sent_bytes=%.0f idle_peer_received_bytes=%.0f "+
			"api_stop_seconds=%.0f api_stop_peer_sent_Bps=%.1f api_stop_peer_received_Bps=%.1f asking_peer_sent_Bps=%.1f asking_peer_received_Bps=%.1f peer_rounds=%.0f api_timeout=%s\n",
			a.node, a.idleEnd.mem.rss, a.idleEnd.mem.anon, a.idleEnd.mem.file, a.idleEnd.mem.hwm,
			cpuPercent(a.idleStart.cpu, a.idleEnd.cpu, footprintIdle), a.idleEnd.sent-a.idleStart.sent, a.idleEnd.received-a.idleStart.received,
			footprintOutage.Seconds(), a.outage.sent/footprintOutage.Seconds(), a.outage.received/footprintOutage.Seconds(),
			a.outage.askingSent, a.outage.askingReceived, a.outage.rounds, agentlease.DefaultBounds.APITimeout)
	}
	for _, p := range probes {
		fmt.Printf("RESULT agent_footprint_compare command=%q binary_mb=%.1f vm_rss_mb=%.1f rss_anon_mb=%.1f rss_file_mb=%.1f vm_hwm_mb=%.1f idle_cpu_pct=%.2f\n",
			p.command, p.sizeMB, p.mem.rss, p.mem.anon, p.mem.file, p.mem.hwm, cpuPercent(p.cpuStart, p.cpuEnd, footprintIdle))
	}
	t.Logf("measured in %s", time.Since(start).Round(time.Second))
}

// footprintBinaries are the binaries `make build` wrote: the figures are
// those of the shipped builds (stripped, -trimpath), not of a test build.
func footprintBinaries(t *testing.T, root string) (small, full string) {
	t.Helper()
	small, full = filepath.Join(root, "bin", "liberator-agent"), filepath.Join(root, "bin", "liberator")
	for _, b := range []string{small, full} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v: run `make build` first (make test-e2e does)", err)
		}
	}
	return small, full
}

// footprintApplyFile server-side applies every object of a YAML file.
func footprintApplyFile(t *testing.T, e *env, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for doc := range strings.SplitSeq(string(raw), "\n---") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj) > 0 {
			if err := e.ApplyObject(context.Background(), &unstructured.Unstructured{Object: obj}); err != nil {
				t.Fatalf("apply %s: %v", path, err)
			}
		}
	}
}

// footprintWaitArmed waits until the node's agent Lease in ns says armed.
func footprintWaitArmed(t *testing.T, e *env, ns, node string) {
	t.Helper()
	e.waitFor(fmt.Sprintf("the agent of %s to arm", node), time.Minute, func() (bool, error) {
		l, err := e.kube.CoordinationV1().Leases(ns).Get(context.Background(), agentlease.LeaseName(node), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		p, err := agentlease.Parse(l)
		return err == nil && p.Armed, err
	})
}

// footprintPID finds the process running binary with the watchdog device
// of one node on its command line.
func footprintPID(t *testing.T, binary, device string) int {
	t.Helper()
	if b, err := filepath.EvalSymlinks(binary); err == nil {
		binary = b
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if exe == binary && strings.Contains(string(cmdline), "\x00"+device+"\x00") {
			return pid
		}
	}
	t.Fatalf("no process of %s with --watchdog-device %s", binary, device)
	return 0
}

// footprintMem is a process's memory from /proc/PID/status, in MB.
type footprintMem struct{ rss, anon, file, hwm float64 }

// footprintSample is what is read of an agent at one instant.
type footprintSample struct {
	at                     time.Time
	mem                    footprintMem
	cpu                    float64 // utime+stime, seconds
	sent, received, rounds float64 // liberator_agent_peer_* counters
}

// footprintTraffic is an agent's peer traffic during the API server's stop:
// bytes over the whole stop, and bytes per second from the first round of
// questions on.
type footprintTraffic struct {
	sent, received             float64
	askingSent, askingReceived float64
	rounds                     float64
}

// footprintAgent is one worker's agent, run by the bed.
type footprintAgent struct {
	node, metrics      string
	pid                int
	idleStart, idleEnd footprintSample
	outage             footprintTraffic
}

// sample reads the agent's memory, CPU and counters. Its CPU is read after
// the scrape at the start of a window and before it at the end, so that the
// window holds none of the scrapes' work.
func (a *footprintAgent) sample(t *testing.T, end bool) footprintSample {
	t.Helper()
	var mem footprintMem
	var cpu float64
	if end {
		mem, cpu = footprintMemory(t, a.pid), footprintCPU(t, a.pid)
	}
	s := a.scrape(t)
	if !end {
		mem, cpu = footprintMemory(t, a.pid), footprintCPU(t, a.pid)
	}
	s.mem, s.cpu = mem, cpu
	return s
}

// scrape reads the agent's peer counters from its /metrics.
func (a *footprintAgent) scrape(t *testing.T) footprintSample {
	t.Helper()
	s := footprintSample{at: time.Now()}
	body, err := footprintHTTP.Get(a.metrics)
	if err != nil {
		t.Fatalf("scrape the agent of %s: %v", a.node, err)
	}
	defer body.Body.Close()
	found := map[string]bool{}
	sc := bufio.NewScanner(body.Body)
	for sc.Scan() {
		name, v, ok := footprintMetric(sc.Text())
		if !ok {
			continue
		}
		found[name] = true
		switch name {
		case "liberator_agent_peer_bytes_sent_total":
			s.sent += v
		case "liberator_agent_peer_bytes_received_total":
			s.received += v
		case "liberator_agent_peer_rounds_total":
			s.rounds += v
		}
	}
	if !found["liberator_agent_peer_bytes_sent_total"] || !found["liberator_agent_peer_bytes_received_total"] {
		t.Fatalf("the /metrics of the agent of %s (%s) has no liberator_agent_peer_bytes_*_total", a.node, a.metrics)
	}
	return s
}

var footprintHTTP = &http.Client{Timeout: 3 * time.Second}

// footprintMetric reads one sample line of the Prometheus text format.
func footprintMetric(line string) (string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	f := strings.Fields(line)
	v, err := strconv.ParseFloat(f[len(f)-1], 64)
	name, _, _ := strings.Cut(f[0], "{")
	return name, v, err == nil
}

// footprintAPIStop stops the API server for footprintOutage and reads the
// agents' peer counters every second meanwhile.
func footprintAPIStop(t *testing.T, e *env, agents []*footprintAgent) {
	t.Helper()
	// The controller manager and the scheduler exit while the API server is
	// away and are left so: nothing here needs them, and starting them again
	// would hold the API server's start until they gave up.
	samples := make([][]footprintSample, len(agents))
	for i, a := range agents {
		samples[i] = []footprintSample{a.scrape(t)}
	}
	if err := e.c.StopComponent(bed.KubeAPIServer); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for time.Since(begin) < footprintOutage {
		time.Sleep(time.Second)
		for i, a := range agents {
			samples[i] = append(samples[i], a.scrape(t))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.c.StartComponent(ctx, bed.KubeAPIServer); err != nil {
		t.Fatal(err)
	}
	t.Logf("the API server answers again %s after its stop", time.Since(begin).Round(100*time.Millisecond))
	for i, a := range agents {
		a.outage = footprintRates(samples[i])
		if r := e.c.Resets(a.node); len(r) > 0 || !e.c.AgentRunning(a.node) {
			t.Errorf("%s: %d watchdog resets, agent running %v: the figures are not of a running agent", a.node, len(r), e.c.AgentRunning(a.node))
		}
		if a.outage.rounds == 0 {
			t.Errorf("the agent of %s asked its peers no question during the %s stop of the API server (API timeout %s)",
				a.node, footprintOutage, agentlease.DefaultBounds.APITimeout)
		}
	}
}

// footprintRates turns the samples of one agent's counters (the first
// before the stop) into its traffic.
func footprintRates(s []footprintSample) footprintTraffic {
	first, last := s[0], s[len(s)-1]
	tr := footprintTraffic{sent: last.sent - first.sent, received: last.received - first.received, rounds: last.rounds - first.rounds}
	// The first sample after the first round: the rate from there on is the
	// steady one of an agent asking every check interval.
	for _, x := range s[1:] {
		if x.rounds > first.rounds {
			if d := last.at.Sub(x.at).Seconds(); d > 0 {
				tr.askingSent, tr.askingReceived = (last.sent-x.sent)/d, (last.received-x.received)/d
			}
			break
		}
	}
	return tr
}

// footprintMemory reads VmRSS, RssAnon, RssFile and VmHWM of a process.
func footprintMemory(t *testing.T, pid int) footprintMem {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("memory of pid %d: %v", pid, err)
	}
	var m footprintMem
	fields := map[string]*float64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file, "VmHWM:": &m.hwm}
	for line := range strings.SplitSeq(string(raw), "\n") {
		f := strings.Fields(line)
		if to, ok := fields[f0(f)]; ok && len(f) == 3 && f[2] == "kB" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			*to = kb / 1024
		}
	}
	if m.rss == 0 || m.anon == 0 {
		t.Fatalf("pid %d: VmRSS %.1f MB, RssAnon %.1f MB: not measured", pid, m.rss, m.anon)
	}
	return m
}

func f0(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// footprintCPU is a process's utime+stime in seconds (/proc/PID/stat;
// USER_HZ is 100 on Linux).
func footprintCPU(t *testing.T, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU of pid %d: %v", pid, err)
	}
	// The fields after the command name, which may hold spaces: state is
	// field 3, utime 14, stime 15.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("pid %d: /proc/PID/stat %q", pid, s)
	}
	return (utime + stime) / 100
}

// cpuPercent is the CPU used between two readings, in % of one core.
func cpuPercent(start, end float64, d time.Duration) float64 {
	return (end - start) / d.Seconds() * 100
}

// footprintProbe is an agent this test runs on the root network namespace,
// alone in a namespace of its own, to compare binaries in the same
// conditions.
type footprintProbe struct {
	node, namespace, command string
	sizeMB                   float64
	cmd                      *exec.Cmd
	exited                   chan struct{}
	mem                      footprintMem
	cpuStart, cpuEnd         float64
}

// startFootprintProbe runs binary (with the subcommand sub, if any) as the
// agent of the node name, whose Lease lives in the namespace name, under
// the bed's admin identity, with a watchdog served by this test.
func startFootprintProbe(t *testing.T, e *env, binary, name string, sub ...string) *footprintProbe {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "peer.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	device := serveFootprintWatchdog(t, filepath.Join(dir, "watchdog"))
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerAddr := peer.LocalAddr().String()
	peer.Close()
	health, err := kit.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(sub), "--node", name, "--namespace", name, "--kubeconfig", e.c.Kubeconfig(), "--watchdog-device", device,
		"--peer-listen", peerAddr, "--peer-key-file", keyFile, "--health-addr", health)
	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &footprintProbe{node: name, namespace: name, command: strings.TrimSpace(filepath.Base(binary) + " " + strings.Join(sub, " ")),
		cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		<-p.exited
		if t.Failed() {
			raw, _ := os.ReadFile(log.Name())
			t.Logf("log of %s (last lines):\n%s", name, tail(string(raw), 20))
		}
	})
	fi, err := os.Stat(binary)
	if err != nil {
		t.Fatal(err)
	}
	p.sizeMB = float64(fi.Size()) / (1 << 20)
	return p
}

// stop stops the probe cleanly (SIGTERM), or kills it after 10 s.
func (p *footprintProbe) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}()
}

// serveFootprintWatchdog serves the socket watchdog protocol at path (it
// accepts every timeout and never resets anything) and returns the
// --watchdog-device value for it.
func serveFootprintWatchdog(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					if n, ok := strings.CutPrefix(sc.Text(), "timeout "); ok {
						fmt.Fprintf(conn, "timeout %s\n", n)
					}
				}
			}()
		}
	}()
	return "unix:" + path
}
