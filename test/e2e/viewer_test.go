//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// checkViewers checks the read-only roles of config/rbac against the real
// API server and its ClusterRole aggregation, with the open Takeover tk of
// node:
//   - a ServiceAccount bound (ClusterRoleBinding) only to
//     liberator-status-reader runs `liberator status NODE`, which names the
//     Takeover, gets the Takeover, and is refused its deletion;
//   - a ServiceAccount bound only to the built-in `view` gets and lists
//     Takeovers (liberator-viewer is aggregated into it), is refused their
//     deletion, and cannot read nodes (view is not widened to them);
//   - one bound only to the built-in `edit` gets Takeovers too (edit
//     aggregates view) and may patch them (liberator-editor is aggregated
//     into edit), which view may not.
func checkViewers(t *testing.T, e *env, node, tk string) {
	t.Helper()
	ctx := context.Background()
	bind := func(sa, role string) (string, client.Client) {
		t.Helper()
		if _, err := e.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "default"}},
		}
		if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		kc, err := e.c.ServiceAccountKubeconfig(ctx, "default", sa)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(rc, client.Options{Scheme: e.tk.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		return kc, c
	}
	// canGet waits for the role (and the aggregation behind it) to take
	// effect.
	canGet := func(who string, c client.Client) {
		t.Helper()
		e.waitFor(who+" gets Takeover "+tk, 30*time.Second, func() (bool, error) {
			err := c.Get(ctx, client.ObjectKey{Name: tk}, &v1alpha1.Takeover{})
			return err == nil, err
		})
	}
	cannotDelete := func(who string, c client.Client) {
		t.Helper()
		err := c.Delete(ctx, &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: tk}})
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s deleting Takeover %s: %v, want Forbidden", who, tk, err)
		}
		if err := e.tk.Get(ctx, client.ObjectKey{Name: tk}, &v1alpha1.Takeover{}); err != nil {
			t.Fatalf("Takeover %s after %s tried to delete it: %v", tk, who, err)
		}
	}

	// liberator-status-reader: liberator status works with it alone.
	kc, reader := bind("status-reader", "liberator-status-reader")
	canGet("liberator-status-reader", reader)
	var out, errOut bytes.Buffer
	cmd := exec.Command(liberatorBinary(t, e.root), "--kubeconfig", kc, "status", node)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("$ liberator status %s (as liberator-status-reader)\n%s%s(error: %v)", node, out.String(), errOut.String(), err)
	if err != nil || !strings.Contains(out.String(), "Takeover "+tk+": open") || !strings.Contains(out.String(), "default/mysql-0") {
		t.Errorf("status %s as liberator-status-reader: %v %s, want the open Takeover and mysql-0", node, err, strings.TrimSpace(errOut.String()))
	}
	cannotDelete("liberator-status-reader", reader)

	// view: Takeovers through liberator-viewer's aggregation, no nodes.
	_, viewer := bind("viewer", "view")
	canGet("view", viewer)
	var l v1alpha1.TakeoverList
	if err := viewer.List(ctx, &l); err != nil || len(l.Items) == 0 {
		t.Errorf("view lists Takeovers: %v, %d items", err, len(l.Items))
	}
	cannotDelete("view", viewer)
	if err := viewer.Get(ctx, client.ObjectKey{Name: node}, &corev1.Node{}); !apierrors.IsForbidden(err) {
		t.Errorf("view gets node %s: %v, want Forbidden (liberator-viewer must not widen view)", node, err)
	}

	// edit aggregates view, and liberator-editor: it may patch a Takeover
	// (what liberator confirm-off writes), still not delete one; view may
	// not patch. The patches are server-side dry runs: authorized and
	// admitted as a real one, stored nowhere.
	_, editor := bind("editor", "edit")
	canGet("edit", editor)
	cannotDelete("edit", editor)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"liberator.dev/e2e-patch":"x"}}}`))
	e.waitFor("edit patches Takeover "+tk+" (liberator-editor aggregated)", 30*time.Second, func() (bool, error) {
		err := editor.Patch(ctx, &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: tk}}, patch, client.DryRunAll)
		return err == nil, err
	})
	if err := viewer.Patch(ctx, &v1alpha1.Takeover{ObjectMeta: metav1.ObjectMeta{Name: tk}}, patch, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Errorf("view patching Takeover %s: %v, want Forbidden", tk, err)
	}
}
