package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/clock"

	"github.com/liberator-dev/liberator/api/v1alpha1"
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

type drillOptions struct {
	yes             bool
	simulate        bool
	simulateCommand string
	probe           string
	probeInterval   time.Duration
	timeout         time.Duration
	reportJSON      string
	reportHTML      string
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
client-visible downtime. The report goes to standard output, with
--report-json to a file as JSON, and with --report-html to a page that draws
the Takeover on a time axis (as status NODE -o html) with the trigger, the
probe's downtime and when each pod was seen Ready. The exit code is non-zero
if the workloads were not Ready elsewhere within --timeout. The node is left
off: power it on and the controller recovers it.

It asks for confirmation (type the node's name) unless --yes is given.`,
		Example: `  # on the local test bed (make demo-up), with the controller running
  # (the bed's directory $BED holds a pid file per node's kwok process)
  liberator drill worker-1 --simulate --simulate-command 'kill -KILL -- -$(cat $BED/nodes/{node}.pid)' --yes

  # on a staging cluster whose nodes have a power fence class, probing MySQL
  kubectl port-forward svc/mysql 3306:3306 &
  liberator drill db-2 --probe 127.0.0.1:3306 --report-json drill.json --report-html drill.html`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.simulateCommand == "" {
				o.simulateCommand = os.Getenv(SimulateCommandEnv)
			} else if !o.simulate {
				return usageErrorf("--simulate-command is used with --simulate")
			}
			if o.simulate && o.simulateCommand == "" {
				return usageErrorf("--simulate needs the command that stops the node's heartbeats: pass --simulate-command (with {node} for the node's name) or set %s", SimulateCommandEnv)
			}
			if o.timeout <= 0 || o.probeInterval <= 0 {
				return usageErrorf("--timeout and --probe-interval must be positive")
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
	f.StringVar(&o.reportHTML, "report-html", "", "also write the report as a page to this file: the Takeover drawn on a time axis, with the trigger and the probe")
	f.StringVar(&o.configPath, "config", "", "the controller's config file (default: the ConfigMap liberator-config in --controller-namespace)")
	f.StringVar(&o.configNamespace, "controller-namespace", defaultConfigNamespace, "the controller's namespace: its ConfigMap liberator-config and its fence credentials Secrets")
	return cmd
}

// drillPollInterval is how often a drill reads the node's Takeover and
// looks at the probe.
const drillPollInterval = 250 * time.Millisecond

// drillRun is one drill under way: prepare checks the node and finds its
// stateful pods and the trigger, fire stops the node, observe watches the
// controller take over, and report writes what was measured.
type drillRun struct {
	s     IOStreams
	c     *clients
	clock clock.WithTicker
	node  string
	o     *drillOptions

	// Set by prepare.
	n *corev1.Node
	// known holds the names of the node's Takeovers before the drill.
	known map[string]bool
	trig  *drillTrigger
	tr    *tracker

	pr *prober
	ob drillObservation
	// What observe has seen so far.
	finished    bool
	probeDown   bool
	lastWarning string
}

func runDrill(ctx context.Context, s IOStreams, c *clients, node string, o *drillOptions) error {
	d := &drillRun{s: s, c: c, clock: clock.RealClock{}, node: node, o: o}
	if err := d.prepare(ctx); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := d.watch(wctx)
	if err != nil {
		return err
	}
	if err := d.fire(ctx); err != nil {
		return err
	}
	d.observe(ctx, events)
	stop()
	return d.report()
}

// prepare checks the node, chooses the trigger, finds the stateful pods
// and asks for confirmation.
func (d *drillRun) prepare(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	var err error
	if d.o.simulate {
		d.trig = simulateTrigger(d.s, d.node, d.o.simulateCommand)
	} else if d.trig, err = fenceTrigger(ctx, d.c, d.n, d.o); err != nil {
		return err
	}
	if err := d.findPods(ctx); err != nil {
		return err
	}
	if d.o.yes {
		return nil
	}
	what := fmt.Sprintf("Drill on node %s: %s.\nIts %s (%s) go down until the controller takes them over; the node stays off afterwards.",
		d.node, d.trig.description, plural(len(d.tr.pods), "stateful pod"), d.podNames())
	return confirm(d.s, d.node, what)
}

// check refuses a node that is not Ready or has an open Takeover, and
// notes the node's Takeovers so far.
func (d *drillRun) check(ctx context.Context) error {
	node := d.node
	n, err := d.c.node(ctx, node)
	if err != nil {
		return err
	}
	if st := kubeutil.NodeReadyStatus(n); st != corev1.ConditionTrue {
		return fmt.Errorf("node %s is not Ready (Ready=%s): a drill starts from a healthy node", node, orDash(string(st)))
	}
	before, err := listTakeovers(ctx, d.c.tk, node)
	if err != nil {
		if isNoCRD(err) {
			return errors.New("the Takeover CRD is not installed: deploy liberator (kubectl apply -k config/default) before a drill")
		}
		return apiError("list Takeovers", err)
	}
	if t := v1alpha1.OpenTakeoverOf(before); t != nil {
		return fmt.Errorf("node %s has an open Takeover %s (phase %s): finish it before a drill", node, t.Name, t.Status.Phase)
	}
	d.n, d.known = n, map[string]bool{}
	for _, t := range before {
		d.known[t.Name] = true
	}
	if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp {
		fmt.Fprintf(d.s.ErrOut, "warning: %s is a control-plane node; the controller leaves those alone unless includeControlPlane is set\n", node)
	}
	return nil
}

// findPods lists the node's stateful pods.
func (d *drillRun) findPods(ctx context.Context) error {
	kube := d.c.kube
	pl, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", d.node).String()})
	if err != nil {
		return apiError("list the pods of node "+d.node, err)
	}
	claims, err := claimsOf(ctx, kube, pl.Items)
	if err != nil {
		return err
	}
	var moving []*movingPod
	for i := range pl.Items {
		if why := atRisk(&pl.Items[i], claims); why != "" {
			moving = append(moving, newMovingPod(&pl.Items[i], why))
		}
	}
	d.tr = newTracker(moving)
	return nil
}

// podNames lists the stateful pods, "-" when there are none.
func (d *drillRun) podNames() string {
	names := make([]string, len(d.tr.pods))
	for i, m := range d.tr.pods {
		names[i] = m.key()
	}
	return orDash(strings.Join(names, ", "))
}
