package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/kubeutil"
)

// SimulateCommandEnv names the environment variable holding the default
// --simulate-command (a test bed sets it for its shells).
const SimulateCommandEnv = "LIBERATOR_SIMULATE_COMMAND"

// Where the operator commands find the controller's configuration when no
// --config is given (see config/manager).
const (
	defaultConfigNamespace = "tkr-system"
	configMapName          = "liberator-config"
	configMapKey           = "config.yaml"
)

// errNoConfirmation is returned when a destructive command was not
// confirmed.
var errNoConfirmation = errors.New("not confirmed: nothing was done")

type drillOptions struct {
	yes             bool
	simulate        bool
	simulateCommand string
	probe           string
	probeInterval   time.Duration
	timeout         time.Duration
	reportJSON      string
	configPath      string
	configNamespace string
}

func newDrillCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &drillOptions{}
	cmd := &cobra.Command{
		Use:   "drill NODE",
		Short: "Failure drill: stop a node and measure how long the takeover takes",
		Long: `Run a failure drill on a test or staging cluster: stop the node, then
watch the controller take its stateful pods over, and measure the time to
detection, fencing, release and every stateful pod Ready on another node.

The drill only triggers the failure and then observes: everything after the
trigger is the running controller's work, recorded on the node's Takeover.
The trigger is one of:

  - the node's fence class (from --config, or the ConfigMap
    tkr-system/liberator-config the controller reads): its provider powers the
    node off. Providers that cannot stop a node (none, wait) are refused.
  - --simulate: a command that stops the node's heartbeats, for a local test
    bed, given with --simulate-command or $` + SimulateCommandEnv + `; {node} in
    it is replaced by the node's name. On the liberator test bed it kills the
    node's kwok process.

With --probe HOST:PORT a TCP connection is attempted every --probe-interval
(for a Service, through 'kubectl port-forward'), and the report gives the
client-visible downtime. The report goes to standard output, and with
--report-json to a file as JSON. The exit code is non-zero if the workloads
were not Ready elsewhere within --timeout. The node is left off: power it on
and the controller recovers it.

It asks for confirmation (type the node's name) unless --yes is given.`,
		Example: `  # on the local test bed (make demo-up), with the controller running
  # (the bed's directory $BED holds a pid file per node's kwok process)
  liberator drill worker-1 --simulate --simulate-command 'kill -KILL -- -$(cat $BED/nodes/{node}.pid)' --yes

  # on a staging cluster whose nodes have a power fence class, probing MySQL
  kubectl port-forward svc/mysql 3306:3306 &
  liberator drill db-2 --probe 127.0.0.1:3306 --report-json drill.json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.simulateCommand == "" {
				o.simulateCommand = os.Getenv(SimulateCommandEnv)
			} else if !o.simulate {
				return errors.New("--simulate-command is used with --simulate")
			}
			if o.simulate && o.simulateCommand == "" {
				return fmt.Errorf("--simulate needs the command that stops the node's heartbeats: pass --simulate-command (with {node} for the node's name) or set %s", SimulateCommandEnv)
			}
			if o.timeout <= 0 || o.probeInterval <= 0 {
				return errors.New("--timeout and --probe-interval must be positive")
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return runDrill(ctx, s, c, args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&o.simulate, "simulate", false, "simulate the failure with --simulate-command instead of the node's fence provider (test beds)")
	f.StringVar(&o.simulateCommand, "simulate-command", "", "shell command that stops the node's heartbeats; {node} is replaced by the node's name (default $"+SimulateCommandEnv+")")
	f.StringVar(&o.probe, "probe", "", "HOST:PORT to connect to during the drill, to measure client-visible downtime")
	f.DurationVar(&o.probeInterval, "probe-interval", 200*time.Millisecond, "time between probe connections (also each connection's timeout)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the workloads are not Ready elsewhere after this long")
	f.StringVar(&o.reportJSON, "report-json", "", "also write the report as JSON to this file")
	f.StringVar(&o.configPath, "config", "", "the controller's config file (default: the ConfigMap liberator-config in --controller-namespace)")
	f.StringVar(&o.configNamespace, "controller-namespace", defaultConfigNamespace, "the controller's namespace: its ConfigMap liberator-config and its fence credentials Secrets")
	return cmd
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// drillTrigger stops the node.
type drillTrigger struct {
	method      string
	description string
	fire        func(ctx context.Context) error
}

// loadControllerConfig reads the controller's configuration from path, or
// from its ConfigMap.
func loadControllerConfig(ctx context.Context, c *clients, path, namespace string) (*config.Config, string, error) {
	if path != "" {
		cfg, err := config.Load(path)
		return cfg, path, err
	}
	src := "ConfigMap " + namespace + "/" + configMapName
	cm, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, configMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, src, fmt.Errorf("no controller configuration found (%s does not exist): pass --config FILE", src)
	}
	if err != nil {
		return nil, src, apiError("read "+src, err)
	}
	cfg := config.Default()
	if err := config.Parse([]byte(cm.Data[configMapKey]), cfg); err != nil {
		return nil, src, fmt.Errorf("%s: %w", src, err)
	}
	return cfg, src, nil
}

// fenceTrigger powers the node off through its fence class.
func fenceTrigger(ctx context.Context, c *clients, n *corev1.Node, o *drillOptions) (*drillTrigger, error) {
	const need = "fencing drill needs a fence class"
	cfg, src, err := loadControllerConfig(ctx, c, o.configPath, o.configNamespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; or use --simulate on a test bed", need, err)
	}
	fc := cfg.ClassFor(n.Name, n.Labels)
	if fc == nil {
		return nil, fmt.Errorf("%s: node %s matches none of the %d fence classes in %s; add one under fencing.classes, or use --simulate on a test bed", need, n.Name, len(cfg.Fencing.Classes), src)
	}
	if !fc.HasPowerFence() {
		return nil, fmt.Errorf("%s that powers the node off: node %s's class %q uses provider %q, which cannot stop a node; use --simulate on a test bed", need, n.Name, fc.Name, fc.Provider)
	}
	ns := o.configNamespace
	factory := fence.Factory{Namespace: ns, Secrets: func(ctx context.Context, name string) (map[string][]byte, error) {
		sec, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s/%s", fence.ErrSecretNotFound, ns, name)
		}
		if err != nil {
			return nil, apiError("read Secret "+ns+"/"+name, err)
		}
		return sec.Data, nil
	}}
	fencer, err := factory.For(*fc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", need, err)
	}
	class := *fc
	return &drillTrigger{
		method:      "fence",
		description: fmt.Sprintf("power-off through fence class %q (provider %s, from %s)", class.Name, class.Provider, src),
		fire: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, class.Timeout.Duration)
			defer cancel()
			for {
				now := time.Now()
				res, err := fencer.Fence(ctx, fence.Target{Node: n.Name, Class: class, DetectedAt: now, Now: now})
				if err != nil {
					return fmt.Errorf("fence provider %s: %w", class.Provider, err)
				}
				if res.Done {
					if !res.PowerOff {
						return fmt.Errorf("fence provider %s did not power node %s off (%s): it cannot be used for a drill", class.Provider, n.Name, oneLine(res.Output))
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("fence provider %s did not finish within the class timeout %s", class.Provider, class.Timeout.Duration)
				case <-time.After(max(res.RetryAfter, 100*time.Millisecond)):
				}
			}
		},
	}, nil
}

// simulateTrigger runs the simulation command.
func simulateTrigger(s IOStreams, node, command string) *drillTrigger {
	line := strings.ReplaceAll(command, "{node}", shellQuote(node))
	return &drillTrigger{
		method:      "simulate",
		description: line,
		fire: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", line)
			cmd.Stdout, cmd.Stderr = s.ErrOut, s.ErrOut
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("simulation command %q failed: %w", line, err)
			}
			return nil
		},
	}
}

// confirm asks the operator to type the node's name.
func confirm(s IOStreams, node, what string) error {
	fmt.Fprintf(s.ErrOut, "%s\nType the node's name (%s) to go on: ", what, node)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if strings.TrimSpace(line) != node {
		if err != nil {
			return fmt.Errorf("%w (no answer; pass --yes to run without asking)", errNoConfirmation)
		}
		return errNoConfirmation
	}
	return nil
}

func runDrill(ctx context.Context, s IOStreams, c *clients, node string, o *drillOptions) error {
	n, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	if st := kubeutil.NodeReadyStatus(n); st != corev1.ConditionTrue {
		return fmt.Errorf("node %s is not Ready (Ready=%s): a drill starts from a healthy node", node, orDash(string(st)))
	}
	before, err := listTakeovers(ctx, c.tk, node)
	if err != nil {
		if isNoCRD(err) {
			return errors.New("the Takeover CRD is not installed: deploy liberator (kubectl apply -k config/default) before a drill")
		}
		return apiError("list Takeovers", err)
	}
	if t := v1alpha1.OpenTakeoverOf(before); t != nil {
		return fmt.Errorf("node %s has an open Takeover %s (phase %s): finish it before a drill", node, t.Name, t.Status.Phase)
	}
	known := map[string]bool{}
	for _, t := range before {
		known[t.Name] = true
	}
	if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp {
		fmt.Fprintf(s.ErrOut, "warning: %s is a control-plane node; the controller leaves those alone unless includeControlPlane is set\n", node)
	}

	var trig *drillTrigger
	if o.simulate {
		trig = simulateTrigger(s, node, o.simulateCommand)
	} else if trig, err = fenceTrigger(ctx, c, n, o); err != nil {
		return err
	}

	pl, err := c.kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return apiError("list the pods of node "+node, err)
	}
	claims, err := claimsOf(ctx, c.kube, pl.Items)
	if err != nil {
		return err
	}
	var moving []*movingPod
	for i := range pl.Items {
		if why := atRisk(&pl.Items[i], claims); why != "" {
			moving = append(moving, newMovingPod(&pl.Items[i], why))
		}
	}
	tr := newTracker(moving)
	names := make([]string, len(tr.pods))
	for i, m := range tr.pods {
		names[i] = m.key()
	}

	if !o.yes {
		what := fmt.Sprintf("Drill on node %s: %s.\nIts %s (%s) go down until the controller takes them over; the node stays off afterwards.",
			node, trig.description, plural(len(names), "stateful pod"), orDash(strings.Join(names, ", ")))
		if err := confirm(s, node, what); err != nil {
			return err
		}
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var watch *podWatch
	if len(moving) > 0 {
		if watch, err = watchPods(wctx, c.kube, namespacesOf(moving)); err != nil {
			return err
		}
		for _, p := range watch.pods() {
			tr.noteExisting(p)
		}
	}
	var pr *prober
	if o.probe != "" {
		pr = &prober{cfg: probeConfig{address: o.probe, interval: o.probeInterval}}
		go pr.run(wctx)
	}

	fmt.Fprintf(s.Out, "Drill on node %s: %s (%s)\n", node, plural(len(names), "stateful pod"), orDash(strings.Join(names, ", ")))
	ob := drillObservation{node: node, method: trig.method, trigger: trig.description, seen: map[int]time.Time{}, pods: tr.pods}
	if pr != nil {
		ob.probeCfg = &pr.cfg
	}
	ob.triggerStart = time.Now()
	if err := trig.fire(ctx); err != nil {
		return err
	}
	ob.triggered = time.Now()
	t0 := ob.triggered
	logf := func(at time.Time, format string, args ...any) {
		fmt.Fprintf(s.Out, "  %7s  %s\n", offset(at.Sub(t0)), fmt.Sprintf(format, args...))
	}
	logf(t0, "node %s stopped (%s)", node, trig.method)

	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	var events <-chan podChange
	if watch != nil {
		events = watch.events
	}
	probeDown := false
	lastWarning := ""
	for {
		done := false
		select {
		case ch := <-events:
			for _, p := range tr.feed(ch) {
				logf(ch.at, "%s", p.describe())
			}
		case <-poll.C:
			now := time.Now()
			tk, err := drillTakeover(ctx, c, node, known)
			if err != nil {
				if err.Error() != lastWarning {
					lastWarning = err.Error()
					fmt.Fprintf(s.ErrOut, "warning: %v\n", err)
				}
			} else if tk != nil {
				if ob.takeover == nil {
					logf(now, "Takeover %s opened", tk.Name)
				}
				ob.takeover = tk
				for i, p := range tk.Status.Timeline {
					if _, ok := ob.seen[i]; !ok {
						ob.seen[i] = now
						logf(now, "%s (%s) at %s", p.Phase, orDash(p.Reason), p.Time.UTC().Format(time.RFC3339))
					}
				}
			}
			if pr != nil {
				failed, answering := probeState(pr.snapshot(), ob.triggerStart)
				if failed && !answering && !probeDown {
					probeDown = true
					logf(now, "probe %s: not answering", o.probe)
				}
				if probeDown && answering {
					probeDown = false
					logf(now, "probe %s: answering again", o.probe)
				}
			}
			done = drillDone(ob, tr, pr)
		case <-deadline.C:
			ob.problem = fmt.Sprintf("timed out after %s", o.timeout)
			done = true
		case <-ctx.Done():
			ob.problem = "interrupted"
			done = true
		}
		if done {
			break
		}
	}
	stop()
	ob.finished = time.Now()
	if ob.problem != "" {
		var left []string
		if ob.takeover == nil {
			left = append(left, "no Takeover was opened (is the controller running?)")
		} else if ob.takeover.PhaseTime(v1alpha1.PhaseWorkloadsReady) == nil {
			left = append(left, "Takeover in phase "+string(ob.takeover.Status.Phase))
		}
		for _, m := range tr.waiting() {
			left = append(left, m.key()+" not Ready elsewhere ("+m.Last+")")
		}
		if len(left) > 0 {
			ob.problem += ": " + strings.Join(left, "; ")
		}
	}
	if pr != nil {
		ob.probe = pr.snapshot()
	}
	rep := buildDrillReport(ob)
	if err := printDrillReport(s.Out, rep); err != nil {
		return err
	}
	if o.reportJSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.reportJSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	if !rep.Complete {
		if rep.Problem == "" {
			rep.Problem = "the takeover did not complete"
		}
		return fmt.Errorf("drill of %s incomplete: %s", node, rep.Problem)
	}
	return nil
}

// drillDone reports whether everything the drill waits for happened.
func drillDone(ob drillObservation, tr *tracker, pr *prober) bool {
	if ob.takeover == nil || ob.takeover.PhaseTime(v1alpha1.PhaseWorkloadsReady) == nil || len(tr.waiting()) > 0 {
		return false
	}
	if pr != nil {
		failed, answering := probeState(pr.snapshot(), ob.triggerStart)
		if failed && !answering {
			return false
		}
	}
	return true
}

// drillTakeover returns the node's Takeover opened during the drill (one not
// in known), or nil.
func drillTakeover(ctx context.Context, c *clients, node string, known map[string]bool) (*v1alpha1.Takeover, error) {
	l, err := listTakeovers(ctx, c.tk, node)
	if err != nil {
		return nil, apiError("list Takeovers", err)
	}
	for i := len(l) - 1; i >= 0; i-- {
		if !known[l[i].Name] {
			return &l[i], nil
		}
	}
	return nil, nil
}
