// Command demo shows a takeover on a local cluster: it starts the test bed,
// installs liberator and the seed's MySQL StatefulSet, powers off the node of
// mysql-0, prints the takeover as it happens, powers the node on again, and
// cleans up. With --keep it leaves the cluster running for kubectl until it
// is stopped (Ctrl-C, or `demo --down` from another shell).
//
// With --agent (make demo AGENT=1) the workers have no BMC: each lives in a
// network namespace of its own with a liberator agent holding the bed's
// watchdog device, the controller fences with the agent provider, and the
// node of mysql-0 is cut off the network instead of powered off: its agent
// stops feeding the watchdog, which resets the node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liberator-dev/liberator/internal/kubeutil"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/release"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// powerAnnotation on a Node makes a kept demo cluster power that node off
// or on: kubectl annotate --overwrite node worker-1 demo.liberator.dev/power=off
const powerAnnotation = "demo.liberator.dev/power"

const demoConfig = `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
# The defaults, plus one fence class: the demo's nodes have no BMC, so they
# are fenced with the wait provider (a safe time standing for a watchdog).
fencing:
  classes:
  - name: lab
    provider: wait
    wait: {safeTime: 5s}
`

// agentConfig fences every worker with the liberator agent, on the
// defaults (the agents' isolation bound 26 s + margin 2 s).
const agentConfig = `apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
# The defaults, plus one fence class: the demo's workers have no BMC; the
# liberator agent on each holds its watchdog and resets it when cut off.
fencing:
  classes:
  - name: lab
    provider: agent
    selfFence: {margin: 2s, maxIsolation: 60s}
`

func main() {
	keep := flag.Bool("keep", false, "keep the cluster running for kubectl until Ctrl-C or --down")
	flag.BoolVar(&withAgent, "agent", false, "fence with the liberator agent and a watchdog; cut the node off the network instead of powering it off")
	down := flag.Bool("down", false, "stop a cluster kept by --keep")
	flag.Parse()
	var err error
	switch {
	case *down:
		err = stopKept()
	default:
		err = run(*keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func pidFile() string { return filepath.Join(os.TempDir(), "liberator-demo.pid") }

var start = time.Now()

// withAgent is --agent.
var withAgent bool

func say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func run(keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, cfg := bed.Options{Workers: 2}, demoConfig
	if withAgent {
		fmt.Println("liberator demo: the node running mysql-0 is cut off the network; its liberator agent lets the watchdog reset it")
		opts, cfg = bed.Options{Workers: 3, Isolated: true, RebootAfterReset: 5 * time.Second}, agentConfig
	} else {
		fmt.Println("liberator demo: the node running mysql-0 loses power")
	}
	say("building liberator and the pinned control plane if missing, starting a local cluster (%d workers simulated by kwok) ...", opts.Workers)
	opts.Log = func(f string, a ...any) {
		if strings.Contains(f, "[tools]") || strings.Contains(fmt.Sprintf(f, a...), "ready with") {
			say(f, a...)
		}
	}
	env, err := kit.Setup(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		say("cleaning up")
		_ = env.C.Stop()
	}()
	say("installed liberator's namespace tkr-system, Takeover CRD and RBAC from config/")
	dir, err := os.MkdirTemp("", "liberator-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctl, err := env.StartController("liberator", cfg, dir)
	if err != nil {
		return err
	}
	defer ctl.Stop()
	say("controller running as ServiceAccount tkr-system/liberator (log: %s)", ctl.Log)
	if withAgent {
		if err := startAgents(ctx, env, dir); err != nil {
			return err
		}
	}
	if err := env.C.EnsureStorage(ctx); err != nil {
		return err
	}
	if err := env.Apply(ctx, "examples/mysql-statefulset"); err != nil {
		return err
	}
	say("applied the seed's MySQL StatefulSet (examples/mysql-statefulset)")
	p, err := waitPod(ctx, env, "", 3*time.Minute)
	if err != nil {
		return err
	}
	say("mysql-0 is Running and Ready on %s (claim pvc-mysql-0, volume pv-mysql-0)", p.Spec.NodeName)
	if keep {
		return hold(ctx, env)
	}
	if _, err := env.WaitWatching(ctx, ctl, p.Spec.NodeName); err != nil {
		return err
	}
	return takeover(ctx, env, p.Spec.NodeName)
}

// takeover powers the node off, prints the takeover as it happens, then
// powers the node on and prints its recovery.
func takeover(ctx context.Context, env *kit.Env, node string) error {
	if withAgent {
		fmt.Printf("\ncutting %s off the network: its heartbeats stop, mysql-0 is stranded there, still running\n\n", node)
	} else {
		fmt.Printf("\npowering off %s: its heartbeats stop, mysql-0 is stranded there\n\n", node)
	}
	fmt.Printf("  %8s  %-16s %s\n", "T+", "STEP", "DETAIL")
	t0 := time.Now()
	row := func(step, detail string, at time.Time) {
		fmt.Printf("  %7.1fs  %-16s %s\n", at.Sub(t0).Seconds(), step, detail)
	}
	if withAgent {
		if err := env.C.Partition(node, bed.PartitionAll); err != nil {
			return err
		}
		row("CutOff", node+" reaches neither the API server nor its peers", t0)
		go reportReset(ctx, env, node, row)
	} else {
		if err := env.C.PowerOff(node); err != nil {
			return err
		}
		row("PowerOff", node+" loses power", t0)
	}
	seen := 0
	notReady, moved := false, false
	var rto time.Duration
	deadline := time.Now().Add(4 * time.Minute)
	for !moved || seen == 0 || !phaseSeen(env, ctx, node, v1alpha1.PhaseWorkloadsReady) {
		if time.Now().After(deadline) {
			return errors.New("mysql-0 did not come back within 4 minutes")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		seen = printPhases(ctx, env, node, seen, row)
		if !notReady {
			if n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil && !kubeutil.NodeReady(n) {
				notReady = true
				row("NodeNotReady", "kube-controller-manager marks "+node+" Ready=Unknown", time.Now())
			}
		}
		if !moved {
			if p, err := env.Kube.CoreV1().Pods("default").Get(ctx, "mysql-0", metav1.GetOptions{}); err == nil && p.Spec.NodeName != node && p.Spec.NodeName != "" && kit.PodReady(p) {
				moved, rto = true, time.Since(t0)
				row("mysql-0 Ready", "on "+p.Spec.NodeName+", same claim pvc-mysql-0", time.Now())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen = printPhases(ctx, env, node, seen, row)
	fault := "power-off"
	if withAgent {
		fault = "the cut-off"
	}
	fmt.Printf("\nRTO: %.1f s from %s to mysql-0 Ready on another node (Kubernetes alone: never)\n", rto.Seconds(), fault)

	t1 := time.Now()
	if withAgent {
		fmt.Printf("\nreconnecting %s: it boots again (new boot ID) with a new agent; liberator removes its taint after healthyDelay (30 s)\n\n", node)
		if err := env.C.Heal(node); err != nil {
			return err
		}
		row("Reconnect", node+" is on the network again", t1)
	} else {
		fmt.Printf("\npowering %s on again (new boot ID); liberator removes its taint after healthyDelay (30 s)\n\n", node)
		if err := env.C.PowerOn(ctx, node); err != nil {
			return err
		}
		row("PowerOn", node+" boots", t1)
	}
	for !phaseSeen(env, ctx, node, v1alpha1.PhaseRecovered) {
		if time.Since(t1) > 3*time.Minute {
			return errors.New("the node did not recover within 3 minutes")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		seen = printPhases(ctx, env, node, seen, row)
		time.Sleep(200 * time.Millisecond)
	}
	printPhases(ctx, env, node, seen, row)
	if n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
		fmt.Printf("\n%s: out-of-service taint %v, schedulable %v\n", node, release.HasTaint(n), !n.Spec.Unschedulable)
	}
	tks, err := env.Takeovers(ctx, node)
	if err == nil && len(tks) > 0 {
		fmt.Println()
		kit.Timeline(os.Stdout, "the incident as recorded", t0, tks[len(tks)-1])
		printBreakdown(t0, fault, tks[len(tks)-1])
	}
	return nil
}

// printBreakdown prints where the seconds of the takeover went (its
// status.downtime; docs/design.md, "where the seconds go"), t0 being the
// fault.
func printBreakdown(t0 time.Time, fault string, tk v1alpha1.Takeover) {
	d, hb := tk.Status.Downtime, tk.Status.LastHeartbeatSeen
	if d == nil || hb == nil {
		fmt.Println("\nno downtime breakdown recorded")
		return
	}
	cfg := config.Default()
	text := demoConfig
	if withAgent {
		text = agentConfig
	}
	if err := config.Parse([]byte(text), cfg); err != nil {
		fmt.Printf("\nno downtime breakdown: %v\n", err)
		return
	}
	window := cfg.UnhealthyAfter.Duration
	fmt.Printf("\nwhere the seconds went (on the controller's clock, from the last heartbeat it saw, %.1f s before %s):\n", t0.Sub(hb.Time).Seconds(), fault)
	what := map[string]string{
		"fence":    "Detected to Fenced",
		"release":  "Fenced to Released",
		"schedule": "Released to mysql-0 bound to a node",
		"start":    "bound to Ready",
	}
	for _, p := range d.Parts() {
		if p.Duration == nil {
			fmt.Printf("  %-10s %8s\n", p.Name, "-")
			continue
		}
		switch p.Name {
		case "detection":
			what[p.Name] = fmt.Sprintf("unhealthyAfter %s, plus %.1f s to notice its end", window, (p.Duration.Duration - window).Seconds())
		case "total":
			what[p.Name] = fmt.Sprintf("last heartbeat seen to mysql-0 Ready (%.1f s after %s)", hb.Add(p.Duration.Duration).Sub(t0).Seconds(), fault)
		}
		fmt.Printf("  %-10s %7.1fs  %s\n", p.Name, p.Duration.Seconds(), what[p.Name])
	}
}

// printPhases prints the Takeover timeline entries after the first seen.
func printPhases(ctx context.Context, env *kit.Env, node string, seen int, row func(step, detail string, at time.Time)) int {
	tks, err := env.Takeovers(ctx, node)
	if err != nil || len(tks) == 0 {
		return seen
	}
	tl := tks[len(tks)-1].Status.Timeline
	for ; seen < len(tl); seen++ {
		detail := tl[seen].Reason
		if tl[seen].Message != "" {
			detail += ": " + tl[seen].Message
		}
		if len(detail) > 110 {
			detail = detail[:107] + "..."
		}
		row(string(tl[seen].Phase), detail, tl[seen].Time.Time)
	}
	return seen
}

func phaseSeen(env *kit.Env, ctx context.Context, node string, p v1alpha1.Phase) bool {
	tks, err := env.Takeovers(ctx, node)
	return err == nil && len(tks) > 0 && tks[len(tks)-1].PhaseTime(p) != nil
}

func waitPod(ctx context.Context, env *kit.Env, notOn string, timeout time.Duration) (*corev1.Pod, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p, err := env.Kube.CoreV1().Pods("default").Get(ctx, "mysql-0", metav1.GetOptions{})
		if err == nil && p.Spec.NodeName != "" && p.Spec.NodeName != notOn && kit.PodReady(p) {
			return p, nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, errors.New("mysql-0 did not become Ready in time")
}

// hold keeps the cluster until Ctrl-C or --down, powering nodes off and on
// when their power annotation says so.
func hold(ctx context.Context, env *kit.Env) error {
	if err := os.WriteFile(pidFile(), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	defer os.Remove(pidFile())
	fmt.Printf(`
the cluster is up. In another shell:

  export KUBECONFIG=%s
  kubectl get nodes,pods -o wide; kubectl get takeovers
  kubectl annotate --overwrite node worker-1 %s=off   # power a node off (=on: power it on)
  bin/liberator status
  export LIBERATOR_SIMULATE_COMMAND='kubectl annotate --overwrite node {node} %s=off'
  bin/liberator drill worker-1 --simulate --yes

stop it with Ctrl-C here, or: make demo-down
`, env.C.Kubeconfig(), powerAnnotation, powerAnnotation)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		nodes, err := env.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, n := range nodes.Items {
			want := n.Annotations[powerAnnotation]
			on := env.C.PoweredOn(n.Name)
			switch {
			case want == "off" && on:
				say("powering %s off", n.Name)
				if err := env.C.PowerOff(n.Name); err != nil {
					say("power off %s: %v", n.Name, err)
				}
			case want == "on" && !on:
				say("powering %s on", n.Name)
				if err := env.C.PowerOn(ctx, n.Name); err != nil {
					say("power on %s: %v", n.Name, err)
				}
			}
		}
	}
}

// stopKept signals the process holding a kept cluster and waits for it.
func stopKept() error {
	b, err := os.ReadFile(pidFile())
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("no demo cluster is running")
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("bad pid file %s: %w", pidFile(), err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		os.Remove(pidFile())
		return fmt.Errorf("the demo process %d is gone (%v); removed its pid file", pid, err)
	}
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			fmt.Println("demo cluster stopped")
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the demo process %d did not stop within 30 s", pid)
}
