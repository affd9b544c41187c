package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/pause"
)

// maxPauseReason bounds --reason: one line an operator reads in status.
const maxPauseReason = 1024

type pauseOptions struct {
	reason    string
	namespace string
	now       func() time.Time
}

// addControllerNamespaceFlag adds --controller-namespace, the namespace of
// the controller (leaderElection.namespace) where the pause lives.
func addControllerNamespaceFlag(cmd *cobra.Command, ns *string) {
	cmd.Flags().StringVar(ns, "controller-namespace", defaultConfigNamespace, "the controller's namespace (its leaderElection.namespace), where the pause ConfigMap "+pause.ConfigMapName+" lives")
}

func newPauseCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &pauseOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "pause --reason TEXT",
		Short: "Pause liberator cluster-wide: no takeover is opened, no node is fenced",
		Long: `Pause liberator for an upgrade or maintenance, without restarting it: while
paused the controller opens no Takeover and fences no node. It keeps
watching the heartbeats, so that its windows are right when it resumes. An
incident not yet fenced is held (phase Paused, reason ClusterPaused); one
whose node was already fenced (proven off) goes on to release, since moving
the workloads of a node that is off is safe. liberator resume ends it, and
everything held proceeds at once (a node whose heartbeat came back in
between is not taken over).

The pause is the ConfigMap ` + pause.ConfigMapName + ` in the controller's namespace,
recording who paused (as the API server knows you) and --reason; it began
at its creationTimestamp. It survives controller restarts and chart
upgrades. Already paused: the pause in force is shown and kept. It needs
create on ConfigMaps in that namespace.`,
		Example: `  liberator pause --reason "upgrade to Kubernetes 1.34 (ticket OPS-1234)"
  liberator status      # PAUSED since ... by ...: ...
  liberator resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.reason = strings.TrimSpace(o.reason)
			switch {
			case o.reason == "":
				return usageErrorf("--reason is required: say why liberator is paused, such as --reason \"node upgrades\" (liberator status shows it)")
			case len(o.reason) > maxPauseReason:
				return usageErrorf("--reason: at most %d bytes, got %d", maxPauseReason, len(o.reason))
			case strings.ContainsAny(o.reason, "\r\n"):
				return usageErrorf("--reason: one line, without line breaks")
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			return runPause(cmd.Context(), s, c, o)
		},
	}
	cmd.Flags().StringVar(&o.reason, "reason", "", "why liberator is paused (required; shown by liberator status and on the incidents it holds)")
	addControllerNamespaceFlag(cmd, &o.namespace)
	return cmd
}

func newResumeCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &pauseOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "End liberator's cluster-wide pause",
		Long: `End the pause liberator pause began: the pause ConfigMap is deleted, and
the controller opens and fences again at once; incidents it held proceed
(a node whose heartbeat came back meanwhile is not taken over). Not
paused: it says so. It needs delete on ConfigMaps in the controller's
namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := k.clients()
			if err != nil {
				return err
			}
			return runResume(cmd.Context(), s, c, o)
		},
	}
	addControllerNamespaceFlag(cmd, &o.namespace)
	return cmd
}

// readPause returns the pause in force in namespace ns, nil when none.
func readPause(ctx context.Context, c *clients, ns string) (*pause.State, *corev1.ConfigMap, error) {
	cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, pause.ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, apiError(fmt.Sprintf("get ConfigMap %s/%s", ns, pause.ConfigMapName), err)
	}
	s := pause.Of(cm)
	return &s, cm, nil
}

func runPause(ctx context.Context, s IOStreams, c *clients, o *pauseOptions) error {
	p, _, err := readPause(ctx, c, o.namespace)
	if err != nil {
		return err
	}
	if p != nil {
		fmt.Fprintf(s.Out, "liberator is already paused %s (liberator resume to end it)\n", p.Note())
		return nil
	}
	by, err := whoAmI(ctx, c.kube)
	if err != nil {
		return err
	}
	cm, err := c.kube.CoreV1().ConfigMaps(o.namespace).Create(ctx, pause.ConfigMap(o.namespace, by, o.reason), metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Paused by someone else meanwhile: theirs stands.
		if p, _, err := readPause(ctx, c, o.namespace); err != nil || p == nil {
			return goalNotMet(fmt.Errorf("create ConfigMap %s/%s: it exists, but cannot be read back: %v", o.namespace, pause.ConfigMapName, err))
		}
		fmt.Fprintf(s.Out, "liberator is already paused %s (liberator resume to end it)\n", p.Note())
		return nil
	case apierrors.IsNotFound(err):
		return goalNotMet(fmt.Errorf("create ConfigMap %s/%s: namespace %s not found: is liberator installed there? (--controller-namespace)", o.namespace, pause.ConfigMapName, o.namespace))
	case err != nil:
		return apiError(fmt.Sprintf("create ConfigMap %s/%s", o.namespace, pause.ConfigMapName), err)
	}
	fmt.Fprintf(s.Out, "liberator paused %s; no takeover is opened and no node is fenced until liberator resume\n", pause.Of(cm).Note())
	return nil
}

func runResume(ctx context.Context, s IOStreams, c *clients, o *pauseOptions) error {
	p, cm, err := readPause(ctx, c, o.namespace)
	if err != nil {
		return err
	}
	if p == nil {
		fmt.Fprintln(s.Out, "liberator is not paused")
		return nil
	}
	// Delete the pause read, not one begun since by someone else.
	err = c.kube.CoreV1().ConfigMaps(o.namespace).Delete(ctx, pause.ConfigMapName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
	switch {
	case apierrors.IsNotFound(err):
		fmt.Fprintln(s.Out, "liberator is not paused (someone resumed it meanwhile)")
		return nil
	case apierrors.IsConflict(err):
		return goalNotMet(fmt.Errorf("the pause changed while resuming (someone paused again): run liberator status, then liberator resume again"))
	case err != nil:
		return apiError(fmt.Sprintf("delete ConfigMap %s/%s", o.namespace, pause.ConfigMapName), err)
	}
	fmt.Fprintf(s.Out, "liberator resumed: the pause by %s since %s (%s) ended after %s\n", p.By, p.Since.UTC().Format(time.RFC3339), p.Reason, o.now().Sub(p.Since).Round(time.Second))
	return nil
}

// printPauseHeader prints the status header line of a pause in force
// (nothing when p is nil).
func printPauseHeader(w io.Writer, p *pause.State) {
	if p != nil {
		fmt.Fprintf(w, "PAUSED since %s by %s: %s (liberator resume to end it)\n", p.Since.UTC().Format(time.RFC3339), p.By, p.Reason)
	}
}
