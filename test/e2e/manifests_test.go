//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// manifestSource is one set of manifests liberator ships.
type manifestSource struct {
	name string
	objs []*unstructured.Unstructured
}

// TestManifests checks everything liberator ships against a real API server
// of the pinned Kubernetes version:
//
//  1. schema (kubeconform-style): every object of config/default, the
//     DaemonSet overlay, the Helm chart (defaults, DaemonSet mode, the
//     values files of hack/testdata/chart-values/valid) and every example is
//     converted with the server's own OpenAPI v3 (/openapi/v3): an unknown
//     field or a wrong type anywhere is an error;
//  2. server-side apply with dryRun=All and fieldValidation=Strict: the API
//     server validates, defaults and admits every object (Pod Security
//     "restricted" in tkr-system included), and any warning fails the test;
//  3. config/default is applied for real (as `kubectl apply
//     --server-side -k config/default` would), the CRD becomes
//     Established, and the ServiceAccount it creates is allowed exactly the
//     permissions the controller needs (SubjectAccessReview, against the
//     real RBAC authorizer) and denied a sample of others.
func TestManifests(t *testing.T) {
	root, err := bed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sources := shippedManifests(t, root)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	c, err := bed.Start(ctx, bed.Options{Workers: 1, Log: t.Logf})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	warnings := &warningRecorder{}
	rc := c.RESTConfig()
	rc.WarningHandler = warnings
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	a := &manifestApplier{dyn: dyn, mapper: mapper}

	// The CRD and the namespaces must exist before what lives in them can be
	// dry-run: create them for real.
	created := map[string]bool{}
	for _, s := range sources {
		for _, o := range s.objs {
			k := o.GetKind() + "/" + o.GetName()
			if (o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition") && !created[k] {
				created[k] = true
				if err := a.apply(ctx, o, false); err != nil {
					t.Fatalf("%s: apply %s: %v", s.name, k, err)
				}
			}
		}
	}
	waitEstablished(ctx, t, dyn, "takeovers.liberator.dev")
	mapper.Reset()

	t.Run("OpenAPISchema", func(t *testing.T) {
		tc := serverTypeConverter(t, kube)
		for _, s := range sources {
			for _, o := range s.objs {
				if _, err := tc.ObjectToTyped(o); err != nil {
					t.Errorf("%s: %s does not match the API server's OpenAPI schema: %v", s.name, objectID(o), err)
				}
			}
		}
	})

	t.Run("ServerSideDryRun", func(t *testing.T) {
		for _, s := range sources {
			n := 0
			for _, o := range s.objs {
				warnings.reset()
				if err := a.apply(ctx, o, true); err != nil {
					t.Errorf("%s: %s: %v", s.name, objectID(o), err)
					continue
				}
				n++
				for _, w := range warnings.take() {
					t.Errorf("%s: %s: the API server warns: %s", s.name, objectID(o), w)
				}
			}
			t.Logf("%s: %d of %d objects accepted (dry run, strict field validation)", s.name, n, len(s.objs))
		}
	})

	// The checks above must have teeth: broken copies of the shipped
	// controller Deployment fail them.
	t.Run("BadObjectsAreRejected", func(t *testing.T) {
		tc := serverTypeConverter(t, kube)
		var deploy *unstructured.Unstructured
		for _, o := range sources[0].objs {
			if o.GetKind() == "Deployment" {
				deploy = o
			}
		}
		if deploy == nil {
			t.Fatal("config/default has no Deployment")
		}
		container := func(o *unstructured.Unstructured) map[string]any { // not a copy: edits stick
			tmpl := o.Object["spec"].(map[string]any)["template"].(map[string]any)
			return tmpl["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		}
		for _, bad := range []struct {
			what  string
			edit  func(o *unstructured.Unstructured)
			check string // "schema", "dryrun" or "warning"
		}{
			{"an unknown field", func(o *unstructured.Unstructured) { container(o)["imagePullPolicyy"] = "Always" }, "schema"},
			{"a wrong type", func(o *unstructured.Unstructured) { o.Object["spec"].(map[string]any)["replicas"] = "two" }, "schema"},
			{"an unknown field", func(o *unstructured.Unstructured) { container(o)["imagePullPolicyy"] = "Always" }, "dryrun"},
			{"an invalid value", func(o *unstructured.Unstructured) { container(o)["imagePullPolicy"] = "Sometimes" }, "dryrun"},
			{"a pod on the host network in tkr-system (Pod Security restricted)", func(o *unstructured.Unstructured) {
				tmpl := o.Object["spec"].(map[string]any)["template"].(map[string]any)
				tmpl["spec"].(map[string]any)["hostNetwork"] = true
			}, "warning"},
		} {
			o := deploy.DeepCopy()
			bad.edit(o)
			o.SetName("liberator-negative-control")
			switch bad.check {
			case "schema":
				if _, err := tc.ObjectToTyped(o); err == nil {
					t.Errorf("schema check accepted a Deployment with %s", bad.what)
				} else {
					t.Logf("schema check rejects %s: %v", bad.what, err)
				}
			case "dryrun":
				if err := a.apply(ctx, o, true); err == nil {
					t.Errorf("dry run accepted a Deployment with %s", bad.what)
				} else {
					t.Logf("dry run rejects %s: %v", bad.what, err)
				}
			case "warning":
				warnings.reset()
				if err := a.apply(ctx, o, true); err != nil {
					t.Fatal(err)
				}
				if w := warnings.take(); len(w) == 0 {
					t.Errorf("no warning for %s", bad.what)
				} else {
					t.Logf("the API server warns about %s: %s", bad.what, w)
				}
			}
		}
	})

	t.Run("InstallDefault", func(t *testing.T) {
		objs := sources[0].objs // config/default
		for _, o := range objs {
			warnings.reset()
			if err := a.apply(ctx, o, false); err != nil {
				t.Fatalf("apply %s: %v", objectID(o), err)
			}
			for _, w := range warnings.take() {
				t.Errorf("%s: the API server warns: %s", objectID(o), w)
			}
		}
		for _, o := range objs {
			if _, err := a.get(ctx, o); err != nil {
				t.Errorf("%s not found after apply: %v", objectID(o), err)
			}
		}
		checkServiceAccountAccess(ctx, t, kube)
	})
}

// shippedManifests renders everything liberator ships: config/default
// first (the install that TestManifests performs for real), then the other
// kustomizations, the Helm chart with several values, and the examples.
func shippedManifests(t *testing.T, root string) []manifestSource {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "hack/tools/manifest-tools.sh")).Output()
	if err != nil {
		t.Fatalf("hack/tools/manifest-tools.sh (builds helm): %v", err)
	}
	helm := filepath.Join(strings.TrimSpace(lastLine(string(out))), "helm")
	chart := filepath.Join(root, "charts/liberator")

	var sources []manifestSource
	kust := func(dir string) {
		sources = append(sources, manifestSource{"kustomize build " + dir, kustomizeBuild(t, filepath.Join(root, dir))})
	}
	helmTemplate := func(args ...string) {
		all := append([]string{"template", "liberator", chart, "--include-crds"}, args...)
		cmd := exec.Command(helm, all...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		y, err := cmd.Output()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(all, " "), err, stderr.String())
		}
		sources = append(sources, manifestSource{"helm template " + strings.Join(args, " "), decodeObjects(t, y)})
	}
	kust("config/default")
	kust("config/overlays/daemonset")
	helmTemplate()
	helmTemplate("--set", "mode=DaemonSet")
	valid, _ := filepath.Glob(filepath.Join(root, "hack/testdata/chart-values/valid/*.yaml"))
	for _, f := range valid {
		helmTemplate("-f", f)
	}
	examples, _ := filepath.Glob(filepath.Join(root, "examples/*/kustomization.yaml"))
	if len(examples) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(examples))
	}
	for _, k := range examples {
		rel, _ := filepath.Rel(root, filepath.Dir(k))
		kust(rel)
	}
	for _, s := range sources {
		if len(s.objs) == 0 {
			t.Fatalf("%s rendered no objects", s.name)
		}
	}
	return sources
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, y)
}

func decodeObjects(t *testing.T, y []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

func objectID(o *unstructured.Unstructured) string {
	s := o.GetKind() + " "
	if ns := o.GetNamespace(); ns != "" {
		s += ns + "/"
	}
	return s + o.GetName()
}

// manifestApplier server-side applies objects through the dynamic client,
// as kubectl apply --server-side does.
type manifestApplier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

func (a *manifestApplier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset()
		if mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, err
		}
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		if o.GetNamespace() != "" {
			return nil, fmt.Errorf("%s is cluster-scoped but names namespace %q", gvk.Kind, o.GetNamespace())
		}
		return a.dyn.Resource(mapping.Resource), nil
	}
	ns := o.GetNamespace()
	if ns == "" {
		ns = "default" // kubectl's default namespace, where the examples go
	}
	return a.dyn.Resource(mapping.Resource).Namespace(ns), nil
}

func (a *manifestApplier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	ri, err := a.resource(o)
	if err != nil {
		return err
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "liberator-manifests-test", Force: new(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func (a *manifestApplier) get(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := a.resource(o)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, o.GetName(), metav1.GetOptions{})
}

// warningRecorder collects the API server's warnings (Pod Security,
// deprecations, unknown fields) so that the test can fail on them.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

var _ rest.WarningHandler = &warningRecorder{}

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningRecorder) reset() { w.take() }

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

func waitEstablished(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string) {
	t.Helper()
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	deadline := time.Now().Add(time.Minute)
	for {
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not Established after a minute (last error: %v)", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serverTypeConverter reads every group version's schema from the API
// server's /openapi/v3 and builds the converter the server itself uses for
// server-side apply: it rejects unknown fields and wrong types.
func serverTypeConverter(t *testing.T, kube kubernetes.Interface) managedfields.TypeConverter {
	t.Helper()
	paths, err := kube.Discovery().OpenAPIV3().Paths()
	if err != nil {
		t.Fatalf("GET /openapi/v3: %v", err)
	}
	schemas := map[string]*spec.Schema{}
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if p != "api/v1" && !strings.HasPrefix(p, "apis/") {
			continue
		}
		b, err := paths[p].Schema("application/json")
		if err != nil {
			t.Fatalf("GET /openapi/v3/%s: %v", p, err)
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("/openapi/v3/%s: %v", p, err)
		}
		if doc.Components == nil {
			continue
		}
		for n, s := range doc.Components.Schemas {
			schemas[n] = s
		}
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("OpenAPI v3 of the API server: %v", err)
	}
	t.Logf("OpenAPI v3: %d schemas from %d group versions", len(schemas), len(names))
	return tc
}

// checkServiceAccountAccess asks the API server's authorizer what the
// ServiceAccount config/default creates may do: everything the controller
// needs (controller.Permissions, for the shipped config), and not a sample
// of what it must not.
func checkServiceAccountAccess(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	const ns, sa = "tkr-system", "liberator"
	cfg := config.Default()
	user := "system:serviceaccount:" + ns + ":" + sa
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	can := func(a authorizationv1.ResourceAttributes) (bool, error) {
		r, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &a},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return r.Status.Allowed, nil
	}
	need := controller.Permissions(cfg.LeaderElection.Namespace, cfg.LeaderElection.Name)
	for _, p := range need {
		res, sub, _ := strings.Cut(p.Resource, "/")
		ok, err := can(authorizationv1.ResourceAttributes{Group: p.Group, Resource: res, Subresource: sub, Verb: p.Verb, Namespace: p.Namespace, Name: p.Name})
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("the installed RBAC denies %s, which the controller needs (%s)", p, p.Why)
		}
	}
	for _, a := range []authorizationv1.ResourceAttributes{
		{Resource: "secrets", Verb: "get", Namespace: "default"},
		{Resource: "secrets", Verb: "list", Namespace: ns},
		{Resource: "secrets", Verb: "list"},
		{Resource: "pods", Verb: "create", Namespace: "default"},
		{Resource: "nodes", Verb: "update"},
		{Resource: "nodes", Verb: "create"},
		{Resource: "namespaces", Verb: "delete"},
		{Group: "apps", Resource: "statefulsets", Verb: "delete", Namespace: "default"},
		{Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: "kube-node-lease", Name: bed.ControlPlaneNode},
		{Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: ns, Name: "someone-else"},
		{Group: "liberator.dev", Resource: "takeovers", Verb: "delete"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "escalate"},
	} {
		ok, err := can(a)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("the installed RBAC allows %s %s/%s (namespace %q, name %q), which the controller never does", a.Verb, a.Group, a.Resource, a.Namespace, a.Name)
		}
	}
	t.Logf("ServiceAccount %s/%s: %d needed permissions granted, sample of others denied", ns, sa, len(need))
	if _, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Errorf("ServiceAccount %s/%s was not created", ns, sa)
	}
}
