package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

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
				return errors.New("--timeout must be positive")
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

// evacuation is one evacuation under way.
type evacuation struct {
	s     IOStreams
	start time.Time

	mu       sync.Mutex
	timeline []stamp
}

func (r *evacuation) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.s.Out, "  %7s  %s\n", offset(time.Since(r.start)), fmt.Sprintf(format, args...))
}

func (r *evacuation) mark(step, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeline = append(r.timeline, stamp{Step: step, At: time.Now(), Note: note})
}

func runEvacuate(ctx context.Context, s IOStreams, c *clients, node string, o *evacuateOptions) error {
	kube := c.kube
	r := &evacuation{s: s, start: time.Now()}
	r.timeline = []stamp{{Step: "Started", At: r.start}}
	deadline := r.start.Add(o.timeout)
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
	wasCordoned := n.Spec.Unschedulable
	ours := n.Annotations[PlannedTakeoverAnnotation] != ""
	if wasCordoned && !ours && !o.force {
		return fmt.Errorf("node %s is already cordoned by someone else: pass --force to evacuate it anyway (it then stays cordoned even if the evacuation fails)", node)
	}

	errOut := &evictionErrors{}
	helper := &drain.Helper{
		Ctx:                  ctx,
		Client:               kube,
		Force:                o.force,
		GracePeriodSeconds:   o.gracePeriod,
		IgnoreAllDaemonSets:  o.ignoreDaemonSets,
		DeleteEmptyDirData:   o.deleteEmptyDir,
		EvictErrorRetryDelay: 2 * time.Second,
		Out:                  io.Discard,
		ErrOut:               errOut,
	}
	list, errs := helper.GetPodsForDeletion(node)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = oneLine(e.Error())
		}
		return fmt.Errorf("cannot drain node %s: %s", node, strings.Join(msgs, "; "))
	}
	if w := list.Warnings(); w != "" {
		fmt.Fprintf(s.ErrOut, "warning: %s\n", oneLine(w))
	}
	pods := list.Pods()
	claims, err := claimsOf(ctx, kube, pods)
	if err != nil {
		return err
	}
	var moving []*movingPod
	risk := map[types.UID]string{}
	for i := range pods {
		if why := atRisk(&pods[i], claims); why != "" {
			moving = append(moving, newMovingPod(&pods[i], why))
			risk[pods[i].UID] = why
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name })

	if o.dryRun {
		return printEvacuationPlan(ctx, s.Out, kube, n, pods, risk)
	}

	fmt.Fprintf(s.Out, "Evacuation of node %s: %s to evict, %d of them stateful\n", node, plural(len(pods), "pod"), len(moving))
	tr := newTracker(moving)
	var watch *podWatch
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if len(moving) > 0 {
		if watch, err = watchPods(wctx, kube, namespacesOf(moving)); err != nil {
			return err
		}
		for _, p := range watch.pods() {
			tr.noteExisting(p)
		}
	}

	if !wasCordoned {
		if err := setCordon(ctx, kube, node, true, r.start); err != nil {
			return apiError("cordon node "+node, err)
		}
		r.logf("cordoned %s", node)
	} else {
		r.logf("%s was already cordoned", node)
	}
	r.mark("Cordoned", "")
	fail := func(err error) error {
		if wasCordoned {
			return fmt.Errorf("%w; node %s stays cordoned, as it was before", err, node)
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := setCordon(uctx, kube, node, false, time.Time{}); uerr != nil {
			return fmt.Errorf("%w; uncordoning %s failed too: %v", err, node, uerr)
		}
		return fmt.Errorf("%w; node %s uncordoned", err, node)
	}

	// Drain.
	helper.Timeout = time.Until(deadline)
	started := map[types.UID]bool{}
	var smu sync.Mutex
	helper.OnPodDeletionOrEvictionStarted = func(p *corev1.Pod, eviction bool) {
		smu.Lock()
		first := !started[p.UID]
		started[p.UID] = true
		smu.Unlock()
		if first {
			r.logf("evicting %s/%s", p.Namespace, p.Name)
		}
	}
	helper.OnPodDeletionOrEvictionFinished = func(p *corev1.Pod, eviction bool, err error) {
		if err == nil {
			r.logf("evicted %s/%s", p.Namespace, p.Name)
		}
	}
	errOut.onBlocked = func(ns, name string) {
		r.logf("eviction of %s/%s refused by a PodDisruptionBudget; retrying until --timeout", ns, name)
	}
	if err := helper.DeleteOrEvictPods(pods); err != nil {
		if ctx.Err() != nil {
			return fail(fmt.Errorf("evacuation of %s interrupted during the drain", node))
		}
		if blocked := errOut.blockedPods(); len(blocked) > 0 {
			return fail(fmt.Errorf("drain of %s blocked by %s", node, describePDBBlock(context.WithoutCancel(ctx), kube, pods, blocked, o.timeout)))
		}
		return fail(fmt.Errorf("drain of %s failed: %s", node, oneLine(err.Error())))
	}
	r.logf("drained %s", node)
	r.mark("Drained", plural(len(pods), "pod")+" evicted")

	for _, m := range moving {
		if !m.Recreated() {
			r.logf("%s has no controller: deleted, nothing recreates it", m.key())
		}
	}
	// Wait for the stateful pods.
	if len(tr.waiting()) > 0 {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
	wait:
		for len(tr.waiting()) > 0 {
			select {
			case ch := <-watch.events:
				for _, pr := range tr.feed(ch) {
					r.logf("%s", pr.describe())
					if pr.what == "ready" {
						r.mark("PodReady", pr.pod.key()+" on "+pr.pod.Node)
					}
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		if left := tr.waiting(); len(left) > 0 {
			parts := make([]string, len(left))
			for i, m := range left {
				parts[i] = m.key() + " (" + m.Last + ")"
			}
			what := fmt.Sprintf("timed out after %s", o.timeout)
			if ctx.Err() != nil {
				what = "interrupted"
			}
			printSteps(s.Out, r.start, r.timeline)
			return fail(fmt.Errorf("evacuation of %s %s: not Ready on another node: %s", node, what, strings.Join(parts, ", ")))
		}
	}
	r.mark("WorkloadsReady", plural(len(moving), "stateful pod")+" Ready elsewhere")
	printSteps(s.Out, r.start, r.timeline)
	fmt.Fprintf(s.Out, "Evacuation of %s done in %s: %s Ready on other nodes. The node stays cordoned; bring it back with: liberator readmit %s\n",
		node, time.Since(r.start).Round(100*time.Millisecond), plural(len(moving), "stateful pod"), node)
	return nil
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

// setCordon cordons the node (marking it as cordoned by an evacuation that
// began at since) or uncordons it (removing that mark).
func setCordon(ctx context.Context, kube kubernetes.Interface, node string, on bool, since time.Time) error {
	var mark any
	if on {
		mark = since.UTC().Format(time.RFC3339)
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{PlannedTakeoverAnnotation: mark}},
		"spec":     map[string]any{"unschedulable": on},
	})
	if err != nil {
		return err
	}
	_, err = kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// claimsOf reads the claims of the namespaces the pods are in.
func claimsOf(ctx context.Context, kube kubernetes.Interface, pods []corev1.Pod) (map[string]bool, error) {
	var all []corev1.PersistentVolumeClaim
	seen := map[string]bool{}
	for _, p := range pods {
		if seen[p.Namespace] {
			continue
		}
		seen[p.Namespace] = true
		l, err := kube.CoreV1().PersistentVolumeClaims(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, apiError("list PersistentVolumeClaims in "+p.Namespace, err)
		}
		all = append(all, l.Items...)
	}
	return rwoClaims(all), nil
}

// evictionErrors receives the drain helper's error output and notes the
// pods whose eviction a PodDisruptionBudget refused.
type evictionErrors struct {
	mu        sync.Mutex
	blocked   map[string]bool
	order     []string
	onBlocked func(namespace, name string)
	last      string
}

var evictionPod = regexp.MustCompile(`pods?/"([^"]+)" -n "([^"]+)"`)

func (e *evictionErrors) Write(b []byte) (int, error) {
	e.mu.Lock()
	line := string(b)
	e.last = strings.TrimSpace(line)
	var ns, name string
	first := false
	if strings.Contains(line, "disruption budget") {
		if m := evictionPod.FindStringSubmatch(line); m != nil {
			name, ns = m[1], m[2]
			key := ns + "/" + name
			if e.blocked == nil {
				e.blocked = map[string]bool{}
			}
			if !e.blocked[key] {
				e.blocked[key] = true
				e.order = append(e.order, key)
				first = true
			}
		}
	}
	cb := e.onBlocked
	e.mu.Unlock()
	if first && cb != nil {
		cb(ns, name)
	}
	return len(b), nil
}

func (e *evictionErrors) blockedPods() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.order...)
}

// pdbsFor returns the PodDisruptionBudgets whose selector matches the pod.
func pdbsFor(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) ([]policyv1.PodDisruptionBudget, error) {
	l, err := kube.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []policyv1.PodDisruptionBudget
	for _, b := range l.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, b)
		}
	}
	return out, nil
}

// pdbText describes a budget in a few words.
func pdbText(b *policyv1.PodDisruptionBudget) string {
	rule := ""
	switch {
	case b.Spec.MinAvailable != nil:
		rule = "minAvailable " + b.Spec.MinAvailable.String()
	case b.Spec.MaxUnavailable != nil:
		rule = "maxUnavailable " + b.Spec.MaxUnavailable.String()
	}
	return fmt.Sprintf("PodDisruptionBudget %s/%s (%s, %d disruptions allowed)", b.Namespace, b.Name, rule, b.Status.DisruptionsAllowed)
}

// describePDBBlock names the budgets that refused the blocked pods'
// evictions.
func describePDBBlock(ctx context.Context, kube kubernetes.Interface, pods []corev1.Pod, blocked []string, timeout time.Duration) string {
	var parts []string
	for _, key := range blocked {
		var budgets []string
		for i := range pods {
			p := &pods[i]
			if p.Namespace+"/"+p.Name != key {
				continue
			}
			if bs, err := pdbsFor(ctx, kube, p); err == nil {
				for j := range bs {
					budgets = append(budgets, pdbText(&bs[j]))
				}
			}
		}
		if len(budgets) == 0 {
			budgets = []string{"a PodDisruptionBudget"}
		}
		parts = append(parts, fmt.Sprintf("%s for pod %s", strings.Join(budgets, " and "), key))
	}
	return fmt.Sprintf("%s (still refused after --timeout %s)", strings.Join(parts, "; "), timeout)
}

// printEvacuationPlan writes what an evacuation would do.
func printEvacuationPlan(ctx context.Context, w io.Writer, kube kubernetes.Interface, n *corev1.Node, pods []corev1.Pod, risk map[types.UID]string) error {
	fmt.Fprintf(w, "Evacuation of node %s (dry run: nothing is changed)\n", n.Name)
	if n.Spec.Unschedulable {
		fmt.Fprintf(w, "%s is already cordoned\n", n.Name)
	} else {
		fmt.Fprintf(w, "would cordon %s\n", n.Name)
	}
	if len(pods) == 0 {
		fmt.Fprintln(w, "no pods to evict")
		return nil
	}
	fmt.Fprintf(w, "would evict %s, then wait for the stateful ones to be Ready on another node:\n", plural(len(pods), "pod"))
	tw := newTable(w)
	fmt.Fprintln(tw, "  POD\tOWNER\tSTATEFUL\tDISRUPTION BUDGET")
	for i := range pods {
		p := &pods[i]
		owner := "-"
		if o := metav1.GetControllerOf(p); o != nil {
			owner = o.Kind + "/" + o.Name
		}
		budget := "-"
		bs, err := pdbsFor(ctx, kube, p)
		if err != nil {
			return apiError("list PodDisruptionBudgets in "+p.Namespace, err)
		}
		var texts []string
		for j := range bs {
			t := pdbText(&bs[j])
			if bs[j].Status.DisruptionsAllowed < 1 {
				t = "blocks now: " + t
			}
			texts = append(texts, t)
		}
		if len(texts) > 0 {
			budget = strings.Join(texts, "; ")
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\n", p.Namespace, p.Name, owner, orDash(risk[p.UID]), budget)
	}
	return tw.Flush()
}

// plural is "1 pod", "2 pods".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
