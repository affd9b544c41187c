package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/kubeutil"
	"github.com/liberator-dev/liberator/internal/release"
)

type readmitOptions struct {
	force bool
}

func newReadmitCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &readmitOptions{}
	cmd := &cobra.Command{
		Use:     "readmit NODE",
		Aliases: []string{"release"},
		Short:   "Readmit a node: uncordon it and remove liberator's out-of-service taint",
		Long: `Readmit a node into service after an evacuation or a failure: uncordon it
and remove the out-of-service taint liberator put on it.

It refuses, saying why, while the node is not Ready, or while a Takeover of
the node is still open (any phase but Recovered: the controller is still
handling the incident and removes the taint itself once the node is back and
healthy). --force readmits anyway.`,
		Example: `  # after 'liberator evacuate worker-1' and the maintenance
  liberator readmit worker-1

  # while the controller's Takeover is still open (know why first)
  liberator readmit worker-1 --force`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := k.clients()
			if err != nil {
				return err
			}
			return runReadmit(cmd.Context(), s, c, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "readmit even while a Takeover of the node is open or the node is not Ready")
	return cmd
}

// readmitBlockers says why a node must not be readmitted yet: it is not
// Ready, or one of its Takeovers is still open.
func readmitBlockers(n *corev1.Node, tks []v1alpha1.Takeover) []string {
	var out []string
	if st := kubeutil.NodeReadyStatus(n); st != corev1.ConditionTrue {
		out = append(out, fmt.Sprintf("node %s is not Ready (Ready=%s)", n.Name, orDash(string(st))))
	}
	if t := v1alpha1.OpenTakeoverOf(tks); t != nil {
		why := ""
		if t.Status.Reason != "" {
			why = ", " + t.Status.Reason
		}
		out = append(out, fmt.Sprintf("Takeover %s is still open (phase %s%s): the controller removes its taint itself once the node has been back and healthy for its healthyDelay", t.Name, orDash(string(t.Status.Phase)), why))
	}
	return out
}

func runReadmit(ctx context.Context, s IOStreams, c *clients, node string, o *readmitOptions) error {
	n, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	tks, err := c.takeovers(ctx, node)
	if err != nil {
		return err
	}
	if b := readmitBlockers(n, tks); len(b) > 0 {
		if !o.force {
			return fmt.Errorf("not readmitting %s: %s; pass --force to readmit anyway", node, strings.Join(b, "; "))
		}
		fmt.Fprintf(s.ErrOut, "warning: readmitting %s anyway (--force): %s\n", node, strings.Join(b, "; "))
	}
	var done []string
	if n.Spec.Unschedulable || n.Annotations[PlannedTakeoverAnnotation] != "" {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error { return setCordon(ctx, c.kube, node, false, time.Time{}) })
		if err != nil {
			return apiError("uncordon node "+node, err)
		}
		if n.Spec.Unschedulable {
			done = append(done, "uncordoned")
		}
	}
	if release.HasLiberatorTaint(n) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error { return release.Untaint(ctx, c.kube, node) })
		if err != nil {
			return apiError("remove liberator's taints from node "+node, err)
		}
		done = append(done, "liberator's taints removed")
	}
	if len(done) == 0 {
		fmt.Fprintf(s.Out, "node %s: nothing to readmit (schedulable, no out-of-service taint)\n", node)
		return nil
	}
	fmt.Fprintf(s.Out, "node %s readmitted: %s\n", node, strings.Join(done, ", "))
	return nil
}
