package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/pause"
	"github.com/liberator-dev/liberator/internal/release"
)

type statusOptions struct {
	output    string
	noHeaders bool
	// controllerNamespace is where the pause ConfigMap lives.
	controllerNamespace string
}

func newStatusCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [NODE]",
		Short: "Show nodes, their heartbeats, fencing, stateful pods at risk and open Takeovers",
		Long: `Show every node: Ready, the age of its Lease heartbeat (this machine's
clock minus the renewTime the kubelet wrote; a display only, liberator itself
never compares clocks), the FenceReady condition, whether it is cordoned or
tainted out-of-service, how many stateful pods it runs (StatefulSet pods and
pods with a ReadWriteOnce volume: the ones that stay down if the node fails),
and its open Takeover with phase and elapsed time. While liberator is paused
(liberator pause) the first line says so, by whom, since when and why; in
-o json and yaml the List's annotations liberator.dev/paused-by,
paused-since and paused-reason do.

With a NODE, show that node's stateful pods and the timeline of each of its
Takeovers. With -n, count only the pods of that namespace. With a NODE,
-o svg draws each of its Takeovers (newest first) on a time axis from the
node's last heartbeat seen to its workloads Ready: the downtime's parts as
coloured bars, each timeline entry, each moved pod's downtime; -o html is a
self-contained page with the same pictures and the tables.`,
		Example: `  # all nodes
  liberator status

  # more columns, or a document for scripts
  liberator status -o wide
  liberator status -o json

  # one node's stateful pods and Takeover timelines
  liberator status worker-1

  # the same Takeovers as a picture, to open in a browser
  liberator status worker-1 -o html > worker-1.html`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			node := ""
			if len(args) == 1 {
				node = args[0]
			}
			if err := checkStatusOutput(o.output, node); err != nil {
				return err
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			return runStatus(cmd.Context(), s, c, k.namespace(), node, o)
		},
	}
	k.addAllNamespacesFlag(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: "+formatList(statusFormats)+" (html and svg: a picture of each Takeover of NODE)")
	cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "leave the header line out of the table (default and wide output)")
	addControllerNamespaceFlag(cmd, &o.controllerNamespace)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(statusFormatCompletions, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// statusFormats are the values of status -o.
var statusFormats = []string{"wide", "json", "yaml", "name", "jsonpath=...", "go-template=...", "html", "svg"}

// statusFormatCompletions are the values of status -o that complete.
var statusFormatCompletions = []string{"wide", "json", "yaml", "name", "jsonpath=", "go-template=", "html", "svg"}

// formatList joins formats as "a, b or c".
func formatList(formats []string) string {
	if len(formats) < 2 {
		return strings.Join(formats, "")
	}
	return strings.Join(formats[:len(formats)-1], ", ") + " or " + formats[len(formats)-1]
}

func runStatus(ctx context.Context, s IOStreams, c *clients, namespace, node string, o *statusOptions) error {
	output := o.output
	snap, err := readSnapshot(ctx, c, namespace, node)
	if err != nil {
		return err
	}
	rows := nodeStatuses(snap)
	paused := statusPause(ctx, s, c, o.controllerNamespace)
	if output == "" || output == "wide" {
		printPauseHeader(s.Out, paused)
	}
	list := func(tks []v1alpha1.Takeover) statusObjects {
		so := statusList(snap.Now, rows, tks)
		so.pause = paused
		return so
	}
	if node == "" {
		switch output {
		case "", "wide":
			return printStatusTable(s.Out, rows, output == "wide", o.noHeaders)
		default:
			return printStatusObjects(s.Out, output, list(nil))
		}
	}
	if len(rows) != 1 {
		return fmt.Errorf("node %q not found", node)
	}
	switch output {
	case "html":
		return writeNodeHTML(s.Out, snap.Now, rows[0], snap.Takeovers)
	case "svg":
		return writeNodeSVG(s.Out, snap.Now, node, snap.Takeovers)
	case "":
	case "wide":
		if err := printStatusTable(s.Out, rows, true, o.noHeaders); err != nil {
			return err
		}
		fmt.Fprintln(s.Out)
	default:
		return printStatusObjects(s.Out, output, list(snap.Takeovers))
	}
	return printNodeDetail(s.Out, snap.Now, rows[0], snap.Takeovers)
}

// statusPause is the pause in force, nil when none. One that cannot be
// read (no permission on the ConfigMap, a namespace other than the
// controller's) is a warning on standard error, not a failure of status.
func statusPause(ctx context.Context, s IOStreams, c *clients, ns string) *pause.State {
	p, _, err := readPause(ctx, c, ns)
	if err != nil {
		fmt.Fprintf(s.ErrOut, "liberator: warning: cannot tell whether liberator is paused: %v\n", err)
	}
	return p
}

// readSnapshot reads nodes, Leases, pods, claims and Takeovers: of one node
// when node is set, of pods in one namespace when namespace is set.
func readSnapshot(ctx context.Context, c *clients, namespace, node string) (snapshot, error) {
	var snap snapshot
	if node != "" {
		n, err := c.node(ctx, node)
		if err != nil {
			return snap, err
		}
		snap.Nodes = []corev1.Node{*n}
		l, err := c.kube.CoordinationV1().Leases(release.NodeLeaseNamespace).Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			snap.Leases = append(snap.Leases, *l)
		} else if !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			return snap, apiError("get the Lease of node "+node, err)
		}
	} else {
		nl, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return snap, apiError("list nodes", err)
		}
		snap.Nodes = nl.Items
		ll, err := c.kube.CoordinationV1().Leases(release.NodeLeaseNamespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			snap.Leases = ll.Items
		} else if !apierrors.IsForbidden(err) {
			return snap, apiError("list node Leases", err)
		}
	}
	popts := metav1.ListOptions{}
	if node != "" {
		popts.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
	}
	pl, err := c.kube.CoreV1().Pods(namespace).List(ctx, popts)
	if err != nil {
		return snap, apiError("list pods", err)
	}
	snap.Pods = pl.Items
	// Without permission to read claims, every claim counts as ReadWriteOnce.
	cl, err := c.kube.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		snap.Claims = cl.Items
	} else if !apierrors.IsForbidden(err) {
		return snap, apiError("list PersistentVolumeClaims", err)
	}
	if snap.Takeovers, err = c.takeovers(ctx, node); err != nil {
		return snap, err
	}
	snap.Now = time.Now()
	return snap, nil
}
