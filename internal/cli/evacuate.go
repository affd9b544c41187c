package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/clock"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/kubeutil"
)

type evacuateOptions struct {
	dryRun           bool
	timeout          time.Duration
	force            bool
	deleteEmptyDir   bool
	ignoreDaemonSets bool
	gracePeriod      int
}

func newEvacuateCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &evacuateOptions{}
	cmd := &cobra.Command{
		Use:     "evacuate NODE",
		Aliases: []string{"takeover"},
		Short:   "Evacuate a node for maintenance: cordon and drain it, and wait until its stateful pods are Ready elsewhere",
		Long: `Evacuate a node for planned maintenance: move its workloads away the way an
operator does it by hand with kubectl cordon and kubectl drain, and tell what
happened.

The node is cordoned, then drained through the Eviction API, so
PodDisruptionBudgets are respected (a blocked eviction is retried until
--timeout). Then the command waits until every stateful pod that left (StatefulSet
pods and pods with a ReadWriteOnce volume) runs Ready on another node, with a
line per pod, and prints the timeline and the total time. The exit code is
non-zero if a pod did not come back within --timeout.

Refusals, each a one-line reason and nothing changed: an unknown node; a node
that is not Ready (a failed node is the controller's to take over); a node
with an open Takeover; a node someone else already cordoned, unless --force;
pods drain cannot evict without --force or --delete-emptydir-data.

An evacuation that fails uncordons the node again, unless it was cordoned
before the command began. The node stays cordoned after a successful
evacuation: bring it back with 'liberator readmit NODE'.`,
		Example: `  # see what would move, change nothing
  liberator evacuate worker-1 --dry-run

  # move worker-1's workloads, giving up after 10 minutes
  liberator evacuate worker-1 --timeout 10m

  # as a kubectl plugin
  kubectl liberator evacuate worker-1`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.timeout <= 0 {
				return usageErrorf("--timeout must be positive")
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return runEvacuate(ctx, s, c, args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "list what would move and which PodDisruptionBudgets would block; change nothing")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the drain and the return of the stateful pods take longer than this")
	f.BoolVar(&o.force, "force", false, "also delete pods no controller manages (as kubectl drain --force), and evacuate a node someone else cordoned")
	f.BoolVar(&o.deleteEmptyDir, "delete-emptydir-data", false, "evict pods with emptyDir volumes (their data is lost)")
	f.BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", true, "leave DaemonSet pods on the node")
	f.IntVar(&o.gracePeriod, "grace-period", -1, "seconds each pod gets to terminate; negative means the pod's own terminationGracePeriodSeconds")
	return cmd
}

// stamp is one step of an evacuation's timeline.
type stamp struct {
	Step string
	At   time.Time
	Note string
}

// evacuation is one evacuation under way: prepare finds what is to move,
// cordon and drain move it, observe waits for the stateful pods to be back
// and report prints the timeline.
type evacuation struct {
	s     IOStreams
	kube  kubernetes.Interface
	clock clock.WithTicker
	node  string
	o     *evacuateOptions
	start time.Time

	// Set by check and prepare.
	n           *corev1.Node
	wasCordoned bool
	helper      *drain.Helper
	errOut      *evictionErrors
	pods        []corev1.Pod
	moving      []*movingPod
	risk        map[types.UID]string
	tr          *tracker

	mu       sync.Mutex
	timeline []stamp
}

func (r *evacuation) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.s.Out, "  %7s  %s\n", offset(r.clock.Since(r.start)), fmt.Sprintf(format, args...))
}

func (r *evacuation) mark(step, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeline = append(r.timeline, stamp{Step: step, At: r.clock.Now(), Note: note})
}

// left is the time left until --timeout.
func (r *evacuation) left() time.Duration {
	return r.start.Add(r.o.timeout).Sub(r.clock.Now())
}

func runEvacuate(ctx context.Context, s IOStreams, c *clients, node string, o *evacuateOptions) error {
	return newEvacuation(s, c.kube, clock.RealClock{}, node, o).run(ctx, c)
}

func newEvacuation(s IOStreams, kube kubernetes.Interface, clk clock.WithTicker, node string, o *evacuateOptions) *evacuation {
	r := &evacuation{s: s, kube: kube, clock: clk, node: node, o: o, start: clk.Now()}
	r.timeline = []stamp{{Step: "Started", At: r.start}}
	return r
}

// run checks and prepares, then cordons, drains, waits and reports.
func (r *evacuation) run(ctx context.Context, c *clients) error {
	s, o, node := r.s, r.o, r.node
	if err := r.check(ctx, c); err != nil {
		return err
	}
	if err := r.prepare(ctx); err != nil {
		return err
	}
	if o.dryRun {
		return printEvacuationPlan(ctx, s.Out, c.kube, r.n, r.pods, r.risk)
	}
	fmt.Fprintf(s.Out, "Evacuation of node %s: %s to evict, %d of them stateful\n", node, plural(len(r.pods), "pod"), len(r.moving))
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := r.watch(wctx)
	if err != nil {
		return err
	}
	if err := r.cordon(ctx); err != nil {
		return err
	}
	if err := r.drain(ctx); err != nil {
		return r.fail(ctx, err)
	}
	if err := r.observe(ctx, events); err != nil {
		return r.fail(ctx, err)
	}
	r.report()
	return nil
}

// check refuses a node that is unknown or not Ready, has an open Takeover,
// or was cordoned by someone else (unless --force).
func (r *evacuation) check(ctx context.Context, c *clients) error {
	node := r.node
	n, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	if st := kubeutil.NodeReadyStatus(n); st != corev1.ConditionTrue {
		return fmt.Errorf("node %s is not Ready (Ready=%s): evacuate drains a live node; a failed node is the controller's to take over (see liberator status %s)", node, orDash(string(st)), node)
	}
	tks, err := c.takeovers(ctx, node)
	if err != nil {
		return err
	}
	if t := v1alpha1.OpenTakeoverOf(tks); t != nil {
		return fmt.Errorf("node %s has an open Takeover %s (phase %s): the controller is handling it (see liberator status %s)", node, t.Name, t.Status.Phase, node)
	}
	r.n, r.wasCordoned = n, n.Spec.Unschedulable
	ours := n.Annotations[PlannedTakeoverAnnotation] != ""
	if r.wasCordoned && !ours && !r.o.force {
		return fmt.Errorf("node %s is already cordoned by someone else: pass --force to evacuate it anyway (it then stays cordoned even if the evacuation fails)", node)
	}
	return nil
}

// prepare lists the pods the drain evicts, and which of them are stateful.
func (r *evacuation) prepare(ctx context.Context) error {
	o := r.o
	r.errOut = &evictionErrors{}
	r.helper = &drain.Helper{
		Ctx:                  ctx,
		Client:               r.kube,
		Force:                o.force,
		GracePeriodSeconds:   o.gracePeriod,
		IgnoreAllDaemonSets:  o.ignoreDaemonSets,
		DeleteEmptyDirData:   o.deleteEmptyDir,
		EvictErrorRetryDelay: 2 * time.Second,
		Out:                  io.Discard,
		ErrOut:               r.errOut,
	}
	list, errs := r.helper.GetPodsForDeletion(r.node)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = oneLine(e.Error())
		}
		return fmt.Errorf("cannot drain node %s: %s", r.node, strings.Join(msgs, "; "))
	}
	if w := list.Warnings(); w != "" {
		fmt.Fprintf(r.s.ErrOut, "warning: %s\n", oneLine(w))
	}
	pods := list.Pods()
	claims, err := claimsOf(ctx, r.kube, pods)
	if err != nil {
		return err
	}
	r.risk = map[types.UID]string{}
	for i := range pods {
		if why := atRisk(&pods[i], claims); why != "" {
			r.moving = append(r.moving, newMovingPod(&pods[i], why))
			r.risk[pods[i].UID] = why
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name })
	r.pods = pods
	return nil
}

// watch starts watching the stateful pods' namespaces, before anything
// moves, and notes the pods that exist now: none of them is a replacement.
func (r *evacuation) watch(ctx context.Context) (<-chan podChange, error) {
	r.tr = newTracker(r.moving)
	if len(r.moving) == 0 {
		return nil, nil
	}
	w, err := watchPods(ctx, r.kube, namespacesOf(r.moving), r.clock)
	if err != nil {
		return nil, err
	}
	for _, p := range w.pods() {
		r.tr.noteExisting(p)
	}
	return w.events, nil
}

// cordon cordons the node and marks it as evacuated, unless it was
// cordoned already.
func (r *evacuation) cordon(ctx context.Context) error {
	if !r.wasCordoned {
		if err := setCordon(ctx, r.kube, r.node, true, r.start); err != nil {
			return apiError("cordon node "+r.node, err)
		}
		r.logf("cordoned %s", r.node)
	} else {
		r.logf("%s was already cordoned", r.node)
	}
	r.mark("Cordoned", "")
	return nil
}

// drain evicts the pods, retrying evictions a PodDisruptionBudget refuses
// until --timeout.
func (r *evacuation) drain(ctx context.Context) error {
	node, h := r.node, r.helper
	h.Timeout = r.left()
	started := map[types.UID]bool{}
	var smu sync.Mutex
	h.OnPodDeletionOrEvictionStarted = func(p *corev1.Pod, eviction bool) {
		smu.Lock()
		first := !started[p.UID]
		started[p.UID] = true
		smu.Unlock()
		if first {
			r.logf("evicting %s/%s", p.Namespace, p.Name)
		}
	}
	h.OnPodDeletionOrEvictionFinished = func(p *corev1.Pod, eviction bool, err error) {
		if err == nil {
			r.logf("evicted %s/%s", p.Namespace, p.Name)
		}
	}
	r.errOut.onBlocked = func(ns, name string) {
		r.logf("eviction of %s/%s refused by a PodDisruptionBudget; retrying until --timeout", ns, name)
	}
	if err := h.DeleteOrEvictPods(r.pods); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("evacuation of %s interrupted during the drain", node)
		}
		if blocked := r.errOut.blockedPods(); len(blocked) > 0 {
			return fmt.Errorf("drain of %s blocked by %s", node, describePDBBlock(context.WithoutCancel(ctx), r.kube, r.pods, blocked, r.o.timeout))
		}
		return fmt.Errorf("drain of %s failed: %s", node, oneLine(err.Error()))
	}
	r.logf("drained %s", node)
	r.mark("Drained", plural(len(r.pods), "pod")+" evicted")
	for _, m := range r.moving {
		if !m.Recreated() {
			r.logf("%s has no controller: deleted, nothing recreates it", m.key())
		}
	}
	return nil
}

// observe waits, until --timeout, for every stateful pod that left to be
// Ready on another node, with a line per step.
func (r *evacuation) observe(ctx context.Context, events <-chan podChange) error {
	tr := r.tr
	loop := &watchLoop{
		clock: r.clock, tracker: tr, events: events,
		progress: func(pr progress, _ time.Time) {
			r.logf("%s", pr.describe())
			if pr.what == "ready" {
				r.mark("PodReady", pr.pod.key()+" on "+pr.pod.Node)
			}
		},
		done: func() bool { return len(tr.waiting()) == 0 },
	}
	loop.run(ctx, r.left())
	left := tr.waiting()
	if len(left) == 0 {
		return nil
	}
	parts := make([]string, len(left))
	for i, m := range left {
		parts[i] = m.key() + " (" + m.Last + ")"
	}
	what := fmt.Sprintf("timed out after %s", r.o.timeout)
	if ctx.Err() != nil {
		what = "interrupted"
	}
	printSteps(r.s.Out, r.start, r.timeline)
	return goalNotMet(fmt.Errorf("evacuation of %s %s: not Ready on another node: %s", r.node, what, strings.Join(parts, ", ")))
}

// fail uncordons the node after a failed evacuation, unless it was
// cordoned before, and says so.
func (r *evacuation) fail(ctx context.Context, err error) error {
	if r.wasCordoned {
		return fmt.Errorf("%w; node %s stays cordoned, as it was before", err, r.node)
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if uerr := setCordon(uctx, r.kube, r.node, false, time.Time{}); uerr != nil {
		return fmt.Errorf("%w; uncordoning %s failed too: %v", err, r.node, uerr)
	}
	return fmt.Errorf("%w; node %s uncordoned", err, r.node)
}

// report prints the timeline and the total time of a finished evacuation.
func (r *evacuation) report() {
	r.mark("WorkloadsReady", plural(len(r.moving), "stateful pod")+" Ready elsewhere")
	printSteps(r.s.Out, r.start, r.timeline)
	fmt.Fprintf(r.s.Out, "Evacuation of %s done in %s: %s Ready on other nodes. The node stays cordoned; bring it back with: liberator readmit %s\n",
		r.node, r.clock.Since(r.start).Round(100*time.Millisecond), plural(len(r.moving), "stateful pod"), r.node)
}

// printSteps writes an evacuation's timeline.
func printSteps(w io.Writer, start time.Time, steps []stamp) {
	fmt.Fprintln(w, "Timeline:")
	tw := newTable(w)
	fmt.Fprintln(tw, "  STEP\tTIME\tT+\tNOTE")
	for _, st := range steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", st.Step, st.At.UTC().Format("15:04:05.000"), offset(st.At.Sub(start)), orDash(st.Note))
	}
	_ = tw.Flush()
}
