package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/pause"
	"github.com/liberator-dev/liberator/internal/release"
)

// Permission is one API permission the controller uses. The list below is
// the single source of the controller's RBAC: the shipped ClusterRole and
// Roles grant exactly these, and a test holds them equal.
type Permission struct {
	Group, Resource, Verb string
	// Namespace is empty for a cluster-wide permission.
	Namespace string
	// Name restricts the permission to one object, when set.
	Name string
	// Why says which step needs it.
	Why string
}

// Permissions returns what the controller needs; leaderNamespace and
// leaderName name its leader election Lease.
func Permissions(leaderNamespace, leaderName string) []Permission {
	p := []Permission{}
	add := func(group, resource, ns, name, why string, verbs ...string) {
		for _, v := range verbs {
			p = append(p, Permission{Group: group, Resource: resource, Verb: v, Namespace: ns, Name: name, Why: why})
		}
	}
	add("", "nodes", "", "", "observe nodes, re-read them live before a release", "get", "list", "watch")
	add("", "nodes", "", "", "out-of-service taint and its removal", "patch")
	add("", "nodes", "", "", "DeleteNode strategy", "delete")
	add("", "nodes/status", "", "", "the FenceReady node condition (fence path checks)", "patch")
	add("", "pods", "", "", "observe pods, force-delete a fenced node's pods", "list", "watch", "delete")
	add("storage.k8s.io", "volumeattachments", "", "", "observe and delete a fenced node's VolumeAttachments", "list", "watch", "delete")
	add("", "events", "", "", "events on nodes and workloads", "create", "patch")
	add(v1alpha1.GroupVersion.Group, "takeovers", "", "", "incident records; delete closed ones beyond retention", "get", "list", "watch", "create", "delete")
	add(v1alpha1.GroupVersion.Group, "takeovers/status", "", "", "incident state", "update")
	add("coordination.k8s.io", "leases", release.NodeLeaseNamespace, "", "node heartbeats", "get", "list", "watch")
	add("coordination.k8s.io", "leases", leaderNamespace, leaderName, "leader election", "get", "update")
	add("coordination.k8s.io", "leases", leaderNamespace, "", "leader election", "create")
	add("coordination.k8s.io", "leases", leaderNamespace, "", "liberator agents' Leases: watch them, write fence requests (agent fence provider)", "get", "list", "watch", "patch")
	add("", "secrets", leaderNamespace, "", "BMC credentials of the fence classes (credentialsSecret), read when needed", "get")
	add("", "configmaps", leaderNamespace, pause.ConfigMapName, "the cluster-wide pause (liberator pause): watch it, read it live before fencing", "get", "list", "watch")
	return p
}

// MetricsAuthPermissions are what --metrics-secure needs: the API server
// authenticates each scraper's token and authorizes its request.
func MetricsAuthPermissions() []Permission {
	return []Permission{
		{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create", Why: "--metrics-secure: authenticate a scraper's token"},
		{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create", Why: "--metrics-secure: authorize a scraper's request"},
	}
}

// PreflightMetricsAuth checks that MetricsAuthPermissions are granted.
func PreflightMetricsAuth(ctx context.Context, kube kubernetes.Interface) error {
	missing, err := missingPermissions(ctx, kube, MetricsAuthPermissions())
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("RBAC forbids what --metrics-secure needs: %s; apply config/rbac (kubectl apply -k config/default) or the Helm chart", strings.Join(missing, "; "))
	}
	return nil
}

func (p Permission) String() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	where := "cluster-wide"
	if p.Namespace != "" {
		where = "in namespace " + p.Namespace
	}
	if p.Name != "" {
		r += " named " + p.Name
	}
	return fmt.Sprintf("%s %s %s", p.Verb, r, where)
}

// Preflight checks, before the controller starts, that the Takeover CRD is
// installed and that every permission is granted. It returns one error line
// naming what is missing and how to fix it.
func Preflight(ctx context.Context, kube kubernetes.Interface, leaderNamespace, leaderName string) error {
	gv := v1alpha1.GroupVersion.String()
	res, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) || (err == nil && !hasResource(res.APIResources, "takeovers")) {
		return errors.New("the Takeover CRD (takeovers.liberator.dev) is not installed: apply config/crd (kubectl apply -k config/crd) or install the Helm chart, then restart")
	}
	if err != nil {
		return fmt.Errorf("cannot reach the API server to check the Takeover CRD: %w", err)
	}
	missing, err := missingPermissions(ctx, kube, Permissions(leaderNamespace, leaderName))
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		what := strings.Join(missing, "; ")
		if len(missing) > 3 {
			what = fmt.Sprintf("%s; and %d more of the %d permissions", strings.Join(missing[:3], "; "), len(missing)-3, len(Permissions(leaderNamespace, leaderName)))
		}
		return fmt.Errorf("RBAC forbids what the controller needs: %s; apply config/rbac (kubectl apply -k config/default) or the Helm chart", what)
	}
	return nil
}

// missingPermissions returns the permissions of ps not granted, each with
// what needs it.
func missingPermissions(ctx context.Context, kube kubernetes.Interface, ps []Permission) ([]string, error) {
	var missing []string
	for _, p := range ps {
		r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: p.Group, Resource: strings.Split(p.Resource, "/")[0], Subresource: subresource(p.Resource), Verb: p.Verb, Namespace: p.Namespace, Name: p.Name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("cannot check permissions (SelfSubjectAccessReview): %w", err)
		}
		if !r.Status.Allowed {
			missing = append(missing, p.String()+" ("+p.Why+")")
		}
	}
	return missing, nil
}

func hasResource(list []metav1.APIResource, name string) bool {
	for _, r := range list {
		if r.Name == name {
			return true
		}
	}
	return false
}

func subresource(r string) string {
	if i := strings.IndexByte(r, '/'); i >= 0 {
		return r[i+1:]
	}
	return ""
}
