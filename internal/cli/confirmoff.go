package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
)

// maxConfirmReason bounds --reason (the CRD's limit on
// spec.confirmedOff.reason).
const maxConfirmReason = 512

type confirmOffOptions struct {
	reason string
	// wait is how long to wait for the controller's verdict; 0: do not.
	wait time.Duration
	now  func() time.Time
}

func newConfirmOffCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &confirmOffOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "confirm-off NODE --reason TEXT",
		Short: "State that a failed node is powered off, so that its workloads are released",
		Long: `State, as an operator, that a failed node is powered off (Kubernetes'
non-graceful node shutdown): liberator then releases its workloads as if
it had fenced the node itself.

For a node whose fence class has no automatic fence (provider none), whose
node has no fence class (Unfenceable), or whose power fence keeps failing
(a dead BMC): make sure yourself that the node is off first (pull its
power, or cut it from its storage). The statement is recorded on the
node's open Takeover (spec.confirmedOff) with who made it, as the API
server knows you, when, and --reason.

It is refused while the node's heartbeat is live: its Lease renewed within
its duration, or its heartbeat changed since the Takeover detected it. The
controller checks again before it acts (a live read, as before a fence):
if the node's heartbeat is live it refuses the statement, records that on
the Takeover and releases nothing. The command waits for its verdict
(--wait).`,
		Example: `  # worker-3's BMC is dead; the node was unplugged
  liberator confirm-off worker-3 --reason "BMC dead, power cord pulled (ticket OPS-1234)"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.reason = strings.TrimSpace(o.reason)
			switch {
			case o.reason == "":
				return usageErrorf("--reason is required: say how you know %s is off, such as --reason \"pulled the power cord\"", args[0])
			case len(o.reason) > maxConfirmReason:
				return usageErrorf("--reason: at most %d bytes, got %d", maxConfirmReason, len(o.reason))
			case o.wait < 0:
				return usageErrorf("--wait: must not be negative, got %s", o.wait)
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return runConfirmOff(ctx, s, c, args[0], o)
		},
	}
	cmd.Flags().StringVar(&o.reason, "reason", "", "how you know the node is off (required; recorded on the Takeover)")
	cmd.Flags().DurationVar(&o.wait, "wait", time.Minute, "how long to wait for the controller to take or refuse the statement (0: do not wait)")
	return cmd
}

func runConfirmOff(ctx context.Context, s IOStreams, c *clients, node string, o *confirmOffOptions) error {
	tks, err := c.takeovers(ctx, node)
	if err != nil {
		return err
	}
	n, lease, err := liveHeartbeat(ctx, c, node)
	if err != nil {
		return err
	}
	now := o.now()
	t := v1alpha1.OpenTakeoverOf(tks)
	if t == nil {
		return goalNotMet(fmt.Errorf("liberator has not found %s failed: no open takeover (%s)", node, lastHeartbeat(n, lease, now)))
	}
	if fencedSinceDetection(t) {
		fmt.Fprintf(s.Out, "%s: Takeover %s is already %s (%s): nothing to confirm\n", node, t.Name, t.Status.Phase, orDash(t.Status.Reason))
		return nil
	}
	if err := heartbeatLive(t, node, n, lease, now); err != nil {
		return goalNotMet(fmt.Errorf("refused: %w; nothing was recorded", err))
	}
	if co := t.ConfirmedOffFor(); co != nil {
		fmt.Fprintf(s.Out, "%s: already confirmed off by %s at %s (%s); waiting for the controller\n", node, co.By, co.Time.UTC().Format(time.RFC3339), co.Reason)
	} else {
		by, err := whoAmI(ctx, c.kube)
		if err != nil {
			return err
		}
		co := v1alpha1.ConfirmedOff{By: by, Time: metav1.NewTime(now), Reason: o.reason, Heartbeat: t.DetectedHeartbeat()}
		if err := recordConfirmOff(ctx, c.tk, t, co); err != nil {
			return err
		}
		fmt.Fprintf(s.Out, "%s: confirmed off by %s on Takeover %s (%s)\n", node, by, t.Name, o.reason)
	}
	if o.wait == 0 {
		return nil
	}
	return awaitConfirmOff(ctx, s, c.tk, t.Name, node, o.wait)
}

// liveHeartbeat reads the node and its Lease (either may be gone).
func liveHeartbeat(ctx context.Context, c *clients, node string) (*corev1.Node, *coordinationv1.Lease, error) {
	n, err := c.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n, err = nil, nil
	}
	if err != nil {
		return nil, nil, apiError("get node "+node, err)
	}
	l, err := c.kube.CoordinationV1().Leases(release.NodeLeaseNamespace).Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l, err = nil, nil
	}
	if err != nil {
		return nil, nil, apiError("get the Lease of node "+node, err)
	}
	if n == nil && l == nil {
		return nil, nil, goalNotMet(fmt.Errorf("node %q not found, and it has no Lease (liberator status lists the nodes)", node))
	}
	return n, l, nil
}

// lastHeartbeat says when the node last renewed its Lease (or, without
// one, when its Ready condition last heard from the kubelet), by the
// timestamp the kubelet wrote, against this machine's clock.
func lastHeartbeat(n *corev1.Node, l *coordinationv1.Lease, now time.Time) string {
	if at, ok := heartbeatTime(n, l); ok {
		return fmt.Sprintf("last heartbeat %s ago", now.Sub(at).Round(time.Second))
	}
	return "no heartbeat recorded"
}

func heartbeatTime(n *corev1.Node, l *coordinationv1.Lease) (time.Time, bool) {
	if l != nil && l.Spec.RenewTime != nil {
		return l.Spec.RenewTime.Time, true
	}
	if n != nil {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && !c.LastHeartbeatTime.IsZero() {
				return c.LastHeartbeatTime.Time, true
			}
		}
	}
	return time.Time{}, false
}

// heartbeatLive says why the node may be alive: its Node re-registered,
// its heartbeat differs from the one the Takeover recorded at detection,
// or its Lease was renewed within its duration. nil when none holds.
func heartbeatLive(t *v1alpha1.Takeover, node string, n *corev1.Node, l *coordinationv1.Lease, now time.Time) error {
	if n != nil && t.Spec.NodeUID != "" && string(n.UID) != t.Spec.NodeUID {
		return fmt.Errorf("node %s registered again since Takeover %s detected it (a new UID): its kubelet is alive", node, t.Name)
	}
	if hb := release.Heartbeat(n, l); hb != t.DetectedHeartbeat() {
		return fmt.Errorf("the heartbeat of %s changed since Takeover %s detected it (was %s, now %s): it is alive", node, t.Name, t.DetectedHeartbeat(), hb)
	}
	if l != nil && l.Spec.RenewTime != nil {
		d := 40 * time.Second // the kubelet's default
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if ago := now.Sub(l.Spec.RenewTime.Time); ago < d {
			return fmt.Errorf("the Lease of %s was renewed %s ago, within its duration of %s: its kubelet may be alive", node, ago.Round(time.Second), d)
		}
	}
	return nil
}

// recordConfirmOff writes the statement on the Takeover that was checked:
// the patch carries its UID and resourceVersion, so a Takeover changed
// since (the controller moved it on, or it is another incident) is not
// written.
func recordConfirmOff(ctx context.Context, tk client.Client, t *v1alpha1.Takeover, co v1alpha1.ConfirmedOff) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": t.UID, "resourceVersion": t.ResourceVersion},
		"spec":     map[string]any{"confirmedOff": co},
	})
	if err != nil {
		return err
	}
	err = tk.Patch(ctx, t.DeepCopy(), client.RawPatch(types.MergePatchType, patch))
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return goalNotMet(fmt.Errorf("the Takeover %s changed while it was checked (the controller moved it on): nothing was recorded; run the command again", t.Name))
	case err != nil:
		return apiError("record the confirmation on Takeover "+t.Name, err)
	}
	return nil
}

// awaitConfirmOff waits for the controller to take the statement (the
// Takeover Fenced) or refuse it (closed, or started over).
func awaitConfirmOff(ctx context.Context, s IOStreams, tk client.Client, name, node string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var t v1alpha1.Takeover
	for {
		err := tk.Get(ctx, client.ObjectKey{Name: name}, &t)
		switch {
		case err == nil && fencedSinceDetection(&t):
			fmt.Fprintf(s.Out, "%s: Takeover %s is %s (%s): its workloads are released\n", node, name, t.Status.Phase, orDash(t.Status.Reason))
			return nil
		case err == nil && (t.Status.Phase.Closed() || t.ConfirmedOffFor() == nil):
			return goalNotMet(fmt.Errorf("the controller refused it: Takeover %s is %s (%s): %s", name, t.Status.Phase, orDash(t.Status.Reason), t.Status.Message))
		case apierrors.IsNotFound(err):
			return goalNotMet(fmt.Errorf("the Takeover %s was deleted", name))
		case err != nil && ctx.Err() == nil:
			return apiError("get Takeover "+name, err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return goalNotMet(fmt.Errorf("recorded, but the controller has not taken it within %s: Takeover %s is %s (%s): %s", wait, name, t.Status.Phase, orDash(t.Status.Reason), t.Status.Message))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// fencedSinceDetection reports whether the Takeover is fenced or later:
// its timeline holds Fenced after its last Detected entry (the
// controller's own test), or its phase or release says so.
func fencedSinceDetection(t *v1alpha1.Takeover) bool {
	switch t.Status.Phase {
	case v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady:
		return true
	}
	return t.Status.ReleaseStarted != nil || t.FencedSinceDetection()
}
