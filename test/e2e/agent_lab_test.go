//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// The agent lab: every worker in its own network namespace, with the bed's
// watchdog device and a `liberator agent` process; the controller fences
// them with an agent class. Its oracle counts, per node, the times the bed
// saw it go off: watchdog resets (and power-offs, which no agent scenario
// makes).

// agentWorkers is the number of workers with an agent: a quorum of 3 of 4,
// so that a cut-off node cannot make a quorum and a node cut off from the
// API alone hears from three peers that reach it.
const agentWorkers = 4

// agentProfile is a timing profile: the agents' flags, the bed's kubelet
// Lease and the controller config's head.
type agentProfile struct {
	name      string
	agentArgs []string
	lease     int
	// watchdog is the agents' watchdog timeout.
	watchdog time.Duration
	// config is the top of the controller config; margin and
	// maxIsolation the agent class's.
	config       string
	margin       string
	maxIsolation string
}

// agentFast is the fast profile of docs/fencing.md: an isolation bound of
// 10 s (6 + 0.5 + 0.5 + 3), margin 1 s, maxIsolation 20 s, unhealthyAfter
// 10 s.
var agentFast = agentProfile{
	name: "fast",
	agentArgs: []string{"--renew-interval", "500ms", "--check-interval", "500ms", "--api-timeout", "6s",
		"--peer-timeout", "500ms", "--watchdog-timeout", "3s"},
	lease:        fastLease,
	watchdog:     3 * time.Second,
	config:       "unhealthyAfter: 10s\nhealthyDelay: 5s\nfenceCheckInterval: 0s\n",
	margin:       "1s",
	maxIsolation: "20s",
}

// agentDefaults is every default: the agents' (a bound of 26 s), the
// kubelet's 40 s Lease, the controller's unhealthyAfter 40 s, margin 2 s.
var agentDefaults = agentProfile{
	name:         "default",
	lease:        40,
	watchdog:     agentlease.DefaultBounds.WatchdogTimeout,
	margin:       "2s",
	maxIsolation: "60s",
}

// agentLab is a fault lab whose workers are fenced by their agents.
type agentLab struct {
	*faultLab
	profile agentProfile
	leases  *agentLeaseRecorder
}

func newAgentLab(t *testing.T, scenario string, p agentProfile) *agentLab {
	t.Helper()
	e := newEnv(t, bed.Options{Workers: agentWorkers, LeaseDurationSeconds: p.lease, Isolated: true})
	l := &agentLab{faultLab: &faultLab{env: e, bmcs: nil}, profile: p}
	start := time.Now()
	l.o = newOracle(e, scenario, func() map[string]int { return l.offs(start) })
	l.startAgents()
	l.leases = recordAgentLeases(l)
	return l
}

// offs counts, per worker, the bed's "off" and "reset" transitions since
// since.
func (l *agentLab) offs(since time.Time) map[string]int {
	out := map[string]int{}
	for _, n := range l.otherWorkers() {
		out[n] = 0
		for _, tr := range l.c.History(n) {
			if tr.Off() && tr.Time.After(since) {
				out[n]++
			}
		}
	}
	return out
}

// startAgents installs the agents' ServiceAccount and Role as the agent
// component of config/ ships them and runs an agent on every worker under
// that identity, then waits until each is armed and renewing.
func (l *agentLab) startAgents() {
	l.t.Helper()
	ctx := context.Background()
	for _, f := range []string{"serviceaccount.yaml", "rbac.yaml"} {
		l.applyFile(filepath.Join(l.root, "config", "components", "agent", f))
	}
	kubeconfig, err := l.c.ServiceAccountKubeconfig(ctx, "tkr-system", "liberator-agent")
	if err != nil {
		l.t.Fatal(err)
	}
	spec := bed.AgentSpec{Binary: agentLabBinary(l.t, l.root), Kubeconfig: kubeconfig, Args: l.profile.agentArgs}
	if err := l.c.StartAgents(ctx, spec); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if l.t.Failed() {
			for _, n := range l.otherWorkers() {
				if raw, err := os.ReadFile(l.c.AgentLog(n)); err == nil {
					l.t.Logf("agent log of %s (last lines):\n%s", n, tail(string(raw), 25))
				}
			}
		}
	})
	for _, n := range l.otherWorkers() {
		l.waitArmed(n, time.Minute)
	}
	// An agent's quorum is a majority of the most agents it has seen; one
	// that listed the Leases before its peers created theirs counts fewer
	// until its next listing (every 30 s). The scenarios start from a
	// settled membership.
	want := agentlease.QuorumOf(agentWorkers)
	for _, n := range l.otherWorkers() {
		l.waitFor(fmt.Sprintf("the agent of %s to publish quorum %d", n, want), time.Minute, func() (bool, error) {
			p, err := l.agentLease(n)
			return err == nil && p.Quorum == want, fmt.Errorf("quorum %d, %v", p.Quorum, err)
		})
	}
}

var (
	agentBinOnce sync.Once
	agentBinPath string
	agentBinErr  error
)

// agentLabBinary builds cmd/liberator-agent, the binary the agent
// DaemonSet runs, once per test run.
func agentLabBinary(t *testing.T, root string) string {
	t.Helper()
	agentBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liberator-agent-bin-")
		if err != nil {
			agentBinErr = err
			return
		}
		agentBinPath = filepath.Join(dir, "liberator-agent")
		cmd := exec.Command("go", "build", "-o", agentBinPath, "./cmd/liberator-agent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			agentBinErr = fmt.Errorf("build liberator-agent: %v\n%s", err, out)
		}
	})
	if agentBinErr != nil {
		t.Fatal(agentBinErr)
	}
	return agentBinPath
}

// applyFile server-side applies every object of a YAML file.
func (l *agentLab) applyFile(path string) {
	l.t.Helper()
	if err := l.ApplyFile(context.Background(), path); err != nil {
		l.t.Fatal(err)
	}
}

// agentLease reads the node's agent Lease.
func (l *agentLab) agentLease(node string) (agentlease.Published, error) {
	lease, err := l.kube.CoordinationV1().Leases("tkr-system").Get(context.Background(), agentlease.LeaseName(node), metav1.GetOptions{})
	if err != nil {
		return agentlease.Published{}, err
	}
	return agentlease.Parse(lease)
}

// waitArmed waits until the node's agent publishes armed=true with the
// node's current boot ID.
func (l *agentLab) waitArmed(node string, timeout time.Duration) agentlease.Published {
	l.t.Helper()
	var got agentlease.Published
	l.waitFor("the agent of "+node+" armed", timeout, func() (bool, error) {
		p, err := l.agentLease(node)
		if err != nil {
			return false, err
		}
		got = p
		boot := l.node(node).Status.NodeInfo.BootID
		return p.Armed && p.BootID == boot && l.c.WatchdogArmed(node), fmt.Errorf("armed %v, boot ID %s (node's %s), watchdog armed %v", p.Armed, p.BootID, boot, l.c.WatchdogArmed(node))
	})
	return got
}

// config is the controller config of the profile with one agent class for
// every worker; extra is more top-level YAML.
func (l *agentLab) config(extra string) string {
	return `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
` + l.profile.config + `fencing:
  classes:
  - name: agent
    nodeNames: [` + strings.Join(l.otherWorkers(), ", ") + `]
    provider: agent
    selfFence: {margin: ` + l.profile.margin + `, maxIsolation: ` + l.profile.maxIsolation + `}
` + extra
}

// selfFenceFigures are the times of a node's first watchdog reset after
// the cut at t0: the plain cut-to-reset time, and the agent's own share of
// it (reset time minus the cut minus the watchdog timeout: how long the
// agent took to decide to stop feeding).
func (l *agentLab) selfFenceFigures(node string, t0 time.Time) (bed.Reset, string) {
	l.t.Helper()
	var r bed.Reset
	l.waitFor("the watchdog reset of "+node, 2*time.Minute, func() (bool, error) {
		for _, x := range l.c.Resets(node) {
			if x.Time.After(t0) {
				r = x
				return true, nil
			}
		}
		return false, nil
	})
	figures := fmt.Sprintf("cut_to_reset_seconds=%.1f decide_seconds=%.1f last_feed_after_cut_seconds=%.1f",
		r.Time.Sub(t0).Seconds(), (r.Time.Sub(t0) - r.Timeout).Seconds(), r.LastFeed.Sub(t0).Seconds())
	return r, figures
}

// replacementAfterReset is how long after the node's reset the new
// mysql-0 was first seen Running and Ready (negative: before).
func (l *agentLab) replacementAfterReset(uid string, r bed.Reset) time.Duration {
	for _, p := range l.o.pods.snapshot() {
		if p.uid == uid && !p.running.IsZero() {
			return p.running.Sub(r.Time)
		}
	}
	return 0
}

// agentLeaseRecorder watches every agent Lease and notes, on this
// process's clock, when each fence request and acknowledgement was first
// seen.
type agentLeaseRecorder struct {
	mu       sync.Mutex
	requests map[string]agentMark // node -> first request seen
	acks     map[string]agentMark
}

type agentMark struct {
	takeover string
	at       time.Time
}

func recordAgentLeases(l *agentLab) *agentLeaseRecorder {
	r := &agentLeaseRecorder{requests: map[string]agentMark{}, acks: map[string]agentMark{}}
	f := informers.NewSharedInformerFactoryWithOptions(l.kube, 0, informers.WithNamespace("tkr-system"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = agentlease.NodeLabel }))
	inf := f.Coordination().V1().Leases().Informer()
	seen := func(obj any) {
		lease, ok := obj.(*coordinationv1.Lease)
		if !ok {
			return
		}
		now, node := time.Now(), lease.Labels[agentlease.NodeLabel]
		r.mu.Lock()
		defer r.mu.Unlock()
		if v := lease.Annotations[agentlease.FenceRequest]; v != "" && r.requests[node].takeover != v {
			r.requests[node] = agentMark{v, now}
		}
		if v := lease.Annotations[agentlease.FenceAck]; v != "" && r.acks[node].takeover != v {
			r.acks[node] = agentMark{v, now}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: seen, UpdateFunc: func(_, obj any) { seen(obj) },
	}); err != nil {
		l.t.Fatal(err)
	}
	stop := make(chan struct{})
	l.t.Cleanup(func() { close(stop) })
	f.Start(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		l.t.Fatal("agent Lease recorder: cache did not sync")
	}
	return r
}

func (r *agentLeaseRecorder) request(node string) agentMark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[node]
}

func (r *agentLeaseRecorder) ack(node string) agentMark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acks[node]
}

// agentReasons returns the agent log lines of the node that say why it
// stopped feeding its watchdog (for the log of a scenario).
func (l *agentLab) agentReasons(node string) string {
	raw, err := os.ReadFile(l.c.AgentLog(node))
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.Contains(line, "fenc") || strings.Contains(line, "feed") || strings.Contains(line, "quorum") {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-8):], "\n")
}

// agentMetric scrapes the node's agent's /metrics (at its address on the
// bridge) and sums the samples of name whose labels contain label.
func (l *agentLab) agentMetric(node, name, label string) (float64, error) {
	body, err := httpGet("http://" + net.JoinHostPort(l.c.NodeIP(node), strconv.Itoa(bed.AgentHealthPort)) + "/metrics")
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
