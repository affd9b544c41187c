package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/liberator-dev/liberator/internal/pause"
)

// pauseCluster is a fake cluster where the API server says the caller is
// alice and stamps creationTimestamp on what is created, as a real one does.
func pauseCluster(t *testing.T) (*clients, *fake.Clientset) {
	t.Helper()
	kube := fake.NewSimpleClientset()
	reviewAnswers(kube, authnv1.UserInfo{Username: "alice"}, nil)
	kube.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.CreateAction).GetObject().(*corev1.ConfigMap)
		cm.CreationTimestamp = metav1.NewTime(now)
		return false, nil, nil
	})
	return &clients{kube: kube}, kube
}

func runPauseCmd(t *testing.T, c *clients, reason string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runPause(context.Background(), IOStreams{Out: &out}, c, &pauseOptions{reason: reason, namespace: defaultConfigNamespace})
	return out.String(), err
}

func runResumeCmd(t *testing.T, c *clients) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runResume(context.Background(), IOStreams{Out: &out}, c, &pauseOptions{namespace: defaultConfigNamespace, now: func() time.Time { return now.Add(90 * time.Minute) }})
	return out.String(), err
}

func TestPauseAndResume(t *testing.T) {
	c, kube := pauseCluster(t)
	out, err := runPauseCmd(t, c, "upgrade to 1.34")
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	want := "liberator paused by alice since 2026-03-14T12:00:00Z: upgrade to 1.34; no takeover is opened and no node is fenced until liberator resume\n"
	if out != want {
		t.Errorf("pause printed %q, want %q", out, want)
	}
	cm, err := kube.CoreV1().ConfigMaps(defaultConfigNamespace).Get(context.Background(), pause.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pause ConfigMap: %v", err)
	}
	if cm.Data[pause.KeyBy] != "alice" || cm.Data[pause.KeyReason] != "upgrade to 1.34" {
		t.Errorf("pause ConfigMap data %v, want by alice and the reason", cm.Data)
	}

	// Already paused: said, not overwritten.
	out, err = runPauseCmd(t, c, "another reason")
	if err != nil || out != "liberator is already paused by alice since 2026-03-14T12:00:00Z: upgrade to 1.34 (liberator resume to end it)\n" {
		t.Errorf("pause again: %q, %v", out, err)
	}
	if cm, _ := kube.CoreV1().ConfigMaps(defaultConfigNamespace).Get(context.Background(), pause.ConfigMapName, metav1.GetOptions{}); cm.Data[pause.KeyReason] != "upgrade to 1.34" {
		t.Errorf("a second pause overwrote the first: %v", cm.Data)
	}

	out, err = runResumeCmd(t, c)
	if err != nil || out != "liberator resumed: the pause by alice since 2026-03-14T12:00:00Z (upgrade to 1.34) ended after 1h30m0s\n" {
		t.Errorf("resume: %q, %v", out, err)
	}
	if _, err := kube.CoreV1().ConfigMaps(defaultConfigNamespace).Get(context.Background(), pause.ConfigMapName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after resume the pause ConfigMap is still there (%v)", err)
	}
	out, err = runResumeCmd(t, c)
	if err != nil || out != "liberator is not paused\n" {
		t.Errorf("resume when not paused: %q, %v", out, err)
	}
}

func TestPauseCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantErr  string
		wantCode int
	}{
		{[]string{"pause"}, "--reason is required", ExitUsage},
		{[]string{"pause", "--reason", "  "}, "--reason is required", ExitUsage},
		{[]string{"pause", "--reason", strings.Repeat("x", 1025)}, "--reason: at most 1024 bytes", ExitUsage},
		{[]string{"pause", "--reason", "x", "extra"}, "unknown command \"extra\"", ExitUsage},
		{[]string{"resume", "extra"}, "unknown command \"extra\"", ExitUsage},
	} {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"liberator"}, tc.args...), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut.String(), tc.wantCode, tc.wantErr)
		}
	}
}

func TestPauseRefused(t *testing.T) {
	c, kube := pauseCluster(t)
	kube.PrependReactor("create", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("configmaps"), pause.ConfigMapName, nil)
	})
	_, err := runPauseCmd(t, c, "upgrade")
	if err == nil || ExitCode(err) != ExitCannotRun || !strings.Contains(err.Error(), "create ConfigMap tkr-system/liberator-pause: permission denied") {
		t.Errorf("pause refused by RBAC: %v (exit %d), want exit 3 naming the ConfigMap", err, ExitCode(err))
	}
}

func TestStatusShowsThePause(t *testing.T) {
	p := &pause.State{By: "alice", Reason: "upgrade", Since: now.Add(-time.Hour)}
	var out bytes.Buffer
	printPauseHeader(&out, p)
	if want := "PAUSED since 2026-03-14T11:00:00Z by alice: upgrade (liberator resume to end it)\n"; out.String() != want {
		t.Errorf("status header %q, want %q", out.String(), want)
	}
	out.Reset()
	printPauseHeader(&out, nil)
	if out.Len() != 0 {
		t.Errorf("status header when not paused: %q", out.String())
	}
	so := statusList(now, nil, nil)
	so.pause = p
	l, err := so.list()
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := unstructured.NestedStringMap(l.Object, "metadata", "annotations")
	if a[pauseAnnotationBy] != "alice" || a[pauseAnnotationSince] != "2026-03-14T11:00:00Z" || a[pauseAnnotationReason] != "upgrade" {
		t.Errorf("-o json List annotations %v, want the pause", a)
	}
}
