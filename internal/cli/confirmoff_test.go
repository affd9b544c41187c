package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/release"
)

var confirmNow = time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)

// confirmBed is a node w1 whose Lease was last renewed `renewed` before
// confirmNow, and, when phase is set, its open Takeover recorded at
// detection with the heartbeat it had then (detected) in that phase.
func confirmBed(t *testing.T, renewed time.Duration, phase v1alpha1.Phase, detected string) (*clients, client.Client) {
	t.Helper()
	kube := fake.NewSimpleClientset()
	reviewAnswers(kube, authnv1.UserInfo{Username: "alice"}, nil)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", UID: "uid-w1"}}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "w1", Namespace: release.NodeLeaseNamespace},
		Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](40), RenewTime: ptr.To(metav1.NewMicroTime(confirmNow.Add(-renewed)))}}
	for _, o := range []runtime.Object{n, l} {
		if err := kube.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	b := crfake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.Takeover{}).
		WithIndex(&v1alpha1.Takeover{}, "spec.nodeName", func(o client.Object) []string { return []string{o.(*v1alpha1.Takeover).Spec.NodeName} })
	if phase != "" {
		if detected == "" {
			detected = release.Heartbeat(n, l)
		}
		tk := &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: "w1-20261202-145900", UID: "uid-tk"},
			Spec:   v1alpha1.TakeoverSpec{NodeName: "w1", NodeUID: "uid-w1", Heartbeat: detected, FenceProvider: "none", FenceClass: "manual"},
			Status: v1alpha1.TakeoverStatus{Phase: phase, Heartbeat: detected, Timeline: []v1alpha1.PhaseTransition{{Phase: v1alpha1.PhaseDetected}, {Phase: phase}}}}
		b = b.WithObjects(tk)
	}
	tk := b.Build()
	return &clients{kube: kube, tk: tk}, tk
}

func runConfirm(t *testing.T, c *clients, reason string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runConfirmOff(context.Background(), IOStreams{Out: &out, ErrOut: &out}, c, "w1",
		&confirmOffOptions{reason: reason, now: func() time.Time { return confirmNow }})
	return out.String(), err
}

func TestConfirmOffRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		renewed  time.Duration
		phase    v1alpha1.Phase
		detected string
		want     string
		code     int
	}{
		{name: "live node, no incident", renewed: 3 * time.Second,
			want: "liberator has not found w1 failed: no open takeover (last heartbeat 3s ago)", code: ExitGoalNotMet},
		{name: "silent node, no incident", renewed: 5 * time.Minute,
			want: "liberator has not found w1 failed: no open takeover (last heartbeat 5m0s ago)", code: ExitGoalNotMet},
		{name: "Lease renewed within its duration", renewed: 10 * time.Second, phase: v1alpha1.PhasePaused,
			want: "refused: the Lease of w1 was renewed 10s ago, within its duration of 40s: its kubelet may be alive", code: ExitGoalNotMet},
		{name: "heartbeat changed since detection", renewed: 2 * time.Minute, phase: v1alpha1.PhasePaused, detected: "lease=2026-12-02T14:50:00.000000Z;ready=",
			want: "refused: the heartbeat of w1 changed since Takeover w1-20261202-145900 detected it", code: ExitGoalNotMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, tkc := confirmBed(t, tc.renewed, tc.phase, tc.detected)
			out, err := runConfirm(t, c, "pulled the plug")
			if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != tc.code {
				t.Fatalf("err %v (exit %d), out %q; want exit %d and %q", err, ExitCode(err), out, tc.code, tc.want)
			}
			if tc.phase != "" {
				var tk v1alpha1.Takeover
				if err := tkc.Get(context.Background(), client.ObjectKey{Name: "w1-20261202-145900"}, &tk); err != nil {
					t.Fatal(err)
				}
				if tk.Spec.ConfirmedOff != nil {
					t.Fatalf("refused, but recorded %+v", tk.Spec.ConfirmedOff)
				}
			}
		})
	}
}

func TestConfirmOffAlreadyFenced(t *testing.T) {
	for _, ph := range []v1alpha1.Phase{v1alpha1.PhaseFenced, v1alpha1.PhaseReleased, v1alpha1.PhaseWorkloadsReady} {
		c, _ := confirmBed(t, 2*time.Minute, ph, "")
		out, err := runConfirm(t, c, "late")
		if err != nil || !strings.Contains(out, "nothing to confirm") {
			t.Fatalf("%s: err %v, out %q; want exit 0 and nothing to confirm", ph, err, out)
		}
	}
}

func TestConfirmOffRecords(t *testing.T) {
	c, tkc := confirmBed(t, 2*time.Minute, v1alpha1.PhasePaused, "")
	out, err := runConfirm(t, c, "pulled the plug")
	if err != nil {
		t.Fatalf("err %v, out %q", err, out)
	}
	var tk v1alpha1.Takeover
	if err := tkc.Get(context.Background(), client.ObjectKey{Name: "w1-20261202-145900"}, &tk); err != nil {
		t.Fatal(err)
	}
	co := tk.Spec.ConfirmedOff
	if co == nil || co.By != "alice" || co.Reason != "pulled the plug" || !co.Time.Time.Equal(confirmNow) || co.Heartbeat != tk.DetectedHeartbeat() || tk.ConfirmedOffFor() == nil {
		t.Fatalf("recorded %+v, want by alice, the reason, the time and the detected heartbeat %q", co, tk.DetectedHeartbeat())
	}
	if !strings.Contains(out, "w1: confirmed off by alice") {
		t.Errorf("output %q", out)
	}
}

func TestConfirmOffNeedsAReason(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(IOStreams{Out: &out, ErrOut: &out})
	root.SetArgs([]string{"confirm-off", "w1"})
	err := root.Execute()
	if err == nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("err %v (exit %d); want a usage error naming --reason", err, ExitCode(err))
	}
}
