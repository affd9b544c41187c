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
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
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
//     real RBAC authorizer) and denied a sample of others;
//  4. the liberator agent: every agent DaemonSet shipped (kustomize
//     component, chart, example) has the fields a node's fence needs, and
//     config/overlays/agent installed for real puts an agent pod on every
//     node (admitted by Pod Security only because the component relaxes
//     tkr-system), grants the agents exactly their Lease verbs, and the
//     optional config/agent-lease-policy keeps an agent to its own node's
//     Lease.
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
			// A namespace the user names (the chart's
			// metrics.dashboard.namespace) exists already where it is used.
			if ns := o.GetNamespace(); ns != "" && !created["Namespace/"+ns] && !sourcesCreateNamespace(sources, ns) {
				created["Namespace/"+ns] = true
				n := &unstructured.Unstructured{}
				n.SetAPIVersion("v1")
				n.SetKind("Namespace")
				n.SetName(ns)
				if err := a.apply(ctx, n, false); err != nil {
					t.Fatalf("%s: apply the namespace %s it uses: %v", s.name, ns, err)
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
		// Each source is admitted under the Pod Security labels of the
		// namespaces it creates itself (the agent relaxes tkr-system).
		defer applyNamespaces(ctx, t, a, sources[0])
		for _, s := range sources {
			applyNamespaces(ctx, t, a, sources[0])
			applyNamespaces(ctx, t, a, s)
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

	t.Run("AgentDaemonSets", func(t *testing.T) {
		n := 0
		for _, s := range sources {
			for _, o := range s.objs {
				if o.GetKind() != "DaemonSet" || o.GetName() != "liberator-agent" {
					continue
				}
				n++
				for _, p := range agentDaemonSetProblems(o) {
					t.Errorf("%s: %s: %s", s.name, objectID(o), p)
				}
			}
		}
		if n < 5 {
			t.Errorf("found %d agent DaemonSets, want one each from config/overlays/agent, the chart (three values) and the example", n)
		}
		// The checks must have teeth: broken copies of the shipped agent fail.
		var shipped *unstructured.Unstructured
		for _, o := range kustomizeBuild(t, filepath.Join(root, "config/overlays/agent")) {
			if o.GetKind() == "DaemonSet" {
				shipped = o
			}
		}
		podSpec := func(o *unstructured.Unstructured) map[string]any {
			return o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		}
		container := func(o *unstructured.Unstructured) map[string]any {
			return podSpec(o)["containers"].([]any)[0].(map[string]any)
		}
		for _, bad := range []struct {
			what string
			edit func(o *unstructured.Unstructured)
		}{
			{"not privileged", func(o *unstructured.Unstructured) {
				delete(container(o)["securityContext"].(map[string]any), "privileged")
			}},
			{"the device mounted elsewhere", func(o *unstructured.Unstructured) {
				container(o)["volumeMounts"].([]any)[0].(map[string]any)["mountPath"] = "/dev/wd"
			}},
			{"tolerating only NoSchedule", func(o *unstructured.Unstructured) {
				podSpec(o)["tolerations"] = []any{map[string]any{"operator": "Exists", "effect": "NoSchedule"}}
			}},
			{"no priority class", func(o *unstructured.Unstructured) { delete(podSpec(o), "priorityClassName") }},
			{"HOST_IP from the pod's IP", func(o *unstructured.Unstructured) {
				container(o)["env"].([]any)[1].(map[string]any)["valueFrom"] = map[string]any{"fieldRef": map[string]any{"fieldPath": "status.podIP"}}
			}},
			{"running liberator agent", func(o *unstructured.Unstructured) {
				container(o)["command"] = []any{"/liberator"}
				container(o)["args"] = append([]any{"agent"}, container(o)["args"].([]any)...)
			}},
			{"with an API timeout too short for its renew interval", func(o *unstructured.Unstructured) {
				args := container(o)["args"].([]any)
				for i, a := range args {
					if strings.HasPrefix(a.(string), "--api-timeout=") {
						args[i] = "--api-timeout=5s"
					}
				}
			}},
			{"the key read from another path", func(o *unstructured.Unstructured) {
				args := container(o)["args"].([]any)
				for i, a := range args {
					if strings.HasPrefix(a.(string), "--peer-key-file=") {
						args[i] = "--peer-key-file=/etc/liberator/key"
					}
				}
			}},
		} {
			o := shipped.DeepCopy()
			bad.edit(o)
			if p := agentDaemonSetProblems(o); len(p) == 0 {
				t.Errorf("an agent DaemonSet %s passes the checks", bad.what)
			} else {
				t.Logf("an agent DaemonSet %s: %s", bad.what, p)
			}
		}
	})

	t.Run("InstallAgent", func(t *testing.T) {
		for _, o := range kustomizeBuild(t, filepath.Join(root, "config/overlays/agent")) {
			warnings.reset()
			if err := a.apply(ctx, o, false); err != nil {
				t.Fatalf("apply %s: %v", objectID(o), err)
			}
			for _, w := range warnings.take() {
				t.Errorf("%s: the API server warns: %s", objectID(o), w)
			}
		}
		ds, err := kube.AppsV1().DaemonSets(agentNamespace).Get(ctx, "liberator-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		live, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ds)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range agentDaemonSetProblems(&unstructured.Unstructured{Object: live}) {
			t.Errorf("the installed DaemonSet (as the API server stored it): %s", p)
		}
		waitAgentPods(ctx, t, kube, c.Nodes())
		checkAgentPodSecurity(ctx, t, kube, ds)
		checkAgentAccess(ctx, t, kube)
	})

	t.Run("AgentLeasePolicy", func(t *testing.T) {
		for _, o := range kustomizeBuild(t, filepath.Join(root, "config/agent-lease-policy")) {
			if err := a.apply(ctx, o, false); err != nil {
				t.Fatalf("apply %s: %v", objectID(o), err)
			}
		}
		checkAgentLeasePolicy(ctx, t, kube, c.RESTConfig(), c.Nodes())
	})
}

// applyNamespaces applies, for real, the Namespaces a source creates.
// sourcesCreateNamespace reports whether some source creates namespace ns.
func sourcesCreateNamespace(sources []manifestSource, ns string) bool {
	for _, s := range sources {
		for _, o := range s.objs {
			if o.GetKind() == "Namespace" && o.GetName() == ns {
				return true
			}
		}
	}
	return false
}

func applyNamespaces(ctx context.Context, t *testing.T, a *manifestApplier, s manifestSource) {
	t.Helper()
	for _, o := range s.objs {
		if o.GetKind() == "Namespace" {
			if err := a.apply(ctx, o, false); err != nil {
				t.Fatalf("%s: apply %s: %v", s.name, objectID(o), err)
			}
		}
	}
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
		// In tkr-system, which the chart creates as config/namespace does.
		all := append([]string{"template", "liberator", chart, "--include-crds", "-n", "tkr-system", "--set", "namespace.create=true"}, args...)
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
	kust("config/overlays/agent")
	kust("config/agent-lease-policy")
	helmTemplate()
	helmTemplate("--set", "mode=DaemonSet")
	helmTemplate("--set", "agent.enabled=true")
	helmTemplate("--set", "agent.enabled=true", "--set", "agent.peerKey.existingSecret=liberator-agent-peer")
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
	for i := range sources {
		s := &sources[i]
		if len(s.objs) == 0 {
			t.Fatalf("%s rendered no objects", s.name)
		}
		// The Prometheus Operator's kinds (the chart's metrics.* toggles)
		// are not served by the bed's API server, which has no CRD for
		// them: their rules go through promtool in make verify-monitoring,
		// and hack/verify-chart.sh proves them equal to config/prometheus.
		s.objs = slices.DeleteFunc(s.objs, func(o *unstructured.Unstructured) bool {
			if o.GroupVersionKind().Group != "monitoring.coreos.com" {
				return false
			}
			t.Logf("%s: %s not checked against the bed's API server (no Prometheus Operator CRDs there; see make verify-monitoring)", s.name, objectID(o))
			return true
		})
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
		{Group: "liberator.dev", Resource: "takeovers", Verb: "deletecollection"},
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

// agentNamespace is where the shipped agent runs and keeps its Leases.
const agentNamespace = "tkr-system"

// agentDaemonSetProblems lists what keeps an agent DaemonSet from being a
// node's fence as docs/install.md describes it: on every node, NotReady ones
// included, never preempted, on the host network, with the watchdog device
// (privileged, the hostPath of the device it is told to open), the peer key
// Secret mounted where it is told to read it, its node's name and address
// from the downward API, the agent's own binary (/liberator-agent) as its
// command and bounds the agent accepts.
func agentDaemonSetProblems(o *unstructured.Unstructured) []string {
	var ds appsv1.DaemonSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
		return []string{err.Error()}
	}
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	spec := ds.Spec.Template.Spec
	if spec.PriorityClassName != "system-node-critical" {
		fail("priorityClassName is %q, want system-node-critical", spec.PriorityClassName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
	}) {
		fail("no toleration of every taint (operator Exists, no key): %v", spec.Tolerations)
	}
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		fail("hostNetwork %v, dnsPolicy %q: want the host network with ClusterFirstWithHostNet", spec.HostNetwork, spec.DNSPolicy)
	}
	if spec.ServiceAccountName != "liberator-agent" {
		fail("serviceAccountName is %q, want liberator-agent", spec.ServiceAccountName)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 5 || *g > 30 {
		fail("terminationGracePeriodSeconds %v: want time for a clean stop (armed=false, magic close), at most 30s", g)
	}
	if u := ds.Spec.UpdateStrategy; u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.String() != "1" {
		fail("updateStrategy %+v: want RollingUpdate, one node at a time", u)
	}
	if len(spec.Containers) != 1 {
		return append(bad, fmt.Sprintf("%d containers, want the agent alone", len(spec.Containers)))
	}
	return append(bad, agentContainerProblems(spec, spec.Containers[0])...)
}

// agentContainerProblems checks the agent container against its pod's
// volumes.
func agentContainerProblems(spec corev1.PodSpec, c corev1.Container) []string {
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	flags := map[string]string{}
	for _, arg := range c.Args {
		k, v, _ := strings.Cut(arg, "=")
		if !strings.HasPrefix(k, "--") {
			fail("args %q: %q is not a --flag=value of liberator-agent", c.Args, arg)
		}
		flags[k] = v
	}
	if !slices.Equal(c.Command, []string{agentCommand}) {
		fail("command %q, want [%s]: the agent's own binary in the image", c.Command, agentCommand)
	}
	if err := agentBoundsProblem(flags); err != nil {
		fail("%v", err)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged {
		fail("the container is not privileged: it cannot open the watchdog device")
	} else if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || (sc.Capabilities != nil && len(sc.Capabilities.Add) > 0) {
		fail("securityContext %+v: want a read-only root filesystem and no added capabilities", *sc)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" || env["HOST_IP"] != "status.hostIP" {
		fail("env %v: want NODE_NAME from spec.nodeName and HOST_IP from status.hostIP", env)
	}
	device := flags["--watchdog-device"]
	if v, m := agentVolume(spec, c, func(v corev1.Volume) bool { return v.HostPath != nil && v.HostPath.Path == device }); v == nil ||
		v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathCharDev || m == nil || m.MountPath != device {
		fail("--watchdog-device=%s is not the hostPath of a character device mounted at the same path", device)
	}
	keyFile := flags["--peer-key-file"]
	v, m := agentVolume(spec, c, func(v corev1.Volume) bool { return v.Secret != nil })
	switch {
	case keyFile == "":
		fail("no --peer-key-file")
	case v == nil || m == nil || !m.ReadOnly:
		fail("no Secret volume mounted read-only for the peer key")
	case !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool {
		return k.Key == "key" && m.MountPath+"/"+k.Path == keyFile
	}):
		fail("--peer-key-file=%s is not the key \"key\" of the Secret %s as mounted at %s", keyFile, v.Secret.SecretName, m.MountPath)
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = fmt.Sprintf(":%d/%s", p.ContainerPort, p.Protocol)
	}
	if flags["--peer-listen"]+"/UDP" != ports["peer"] || flags["--health-addr"]+"/TCP" != ports["health"] {
		fail("ports %v do not match --peer-listen=%s (UDP) and --health-addr=%s", ports, flags["--peer-listen"], flags["--health-addr"])
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "health" {
		fail("no liveness probe on /healthz of the health port")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		fail("resources %v: want cpu and memory requests and a memory limit", c.Resources)
	}
	return bad
}

// agentCommand is the agent's own binary in the liberator image
// (cmd/liberator-agent; hack/imagebuild puts it there).
const agentCommand = "/liberator-agent"

// agentBoundsProblem says why the bounds an agent DaemonSet passes would
// keep its agents from starting: every bound flag set, a duration, and
// together passing agentlease.Bounds.Validate.
func agentBoundsProblem(flags map[string]string) error {
	var b agentlease.Bounds
	for _, f := range []struct {
		flag string
		to   *time.Duration
	}{
		{"--watchdog-timeout", &b.WatchdogTimeout}, {"--renew-interval", &b.RenewInterval}, {"--check-interval", &b.CheckInterval},
		{"--api-timeout", &b.APITimeout}, {"--peer-timeout", &b.PeerTimeout},
	} {
		d, err := time.ParseDuration(flags[f.flag])
		if err != nil {
			return fmt.Errorf("%s=%q is not a duration", f.flag, flags[f.flag])
		}
		*f.to = d
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("the agents would refuse the bounds of the args: %v", err)
	}
	return nil
}

// agentVolume finds the first volume that matches and the container's mount
// of it.
func agentVolume(spec corev1.PodSpec, c corev1.Container, match func(corev1.Volume) bool) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range spec.Volumes {
		if !match(spec.Volumes[i]) {
			continue
		}
		for j := range c.VolumeMounts {
			if c.VolumeMounts[j].Name == spec.Volumes[i].Name {
				return &spec.Volumes[i], &c.VolumeMounts[j]
			}
		}
		return &spec.Volumes[i], nil
	}
	return nil, nil
}

// waitAgentPods waits until the DaemonSet controller has put an agent pod on
// every node (the control-plane node's NoSchedule taint included): each was
// admitted by Pod Security in tkr-system.
func waitAgentPods(ctx context.Context, t *testing.T, kube kubernetes.Interface, nodes []string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := kube.CoreV1().Pods(agentNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=agent"})
		if err != nil {
			t.Fatal(err)
		}
		on := map[string]bool{}
		for _, p := range pods.Items {
			on[p.Spec.NodeName] = true
		}
		missing := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return on[n] })
		if len(missing) == 0 {
			t.Logf("an agent pod on each of the %d nodes", len(nodes))
			return
		}
		if time.Now().After(deadline) {
			ds, _ := kube.AppsV1().DaemonSets(agentNamespace).Get(ctx, "liberator-agent", metav1.GetOptions{})
			ev, _ := kube.CoreV1().Events(agentNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=liberator-agent"})
			var msgs []string
			if ev != nil {
				for _, e := range ev.Items {
					msgs = append(msgs, e.Reason+": "+e.Message)
				}
			}
			t.Fatalf("no agent pod on %v after a minute (DaemonSet status %+v; events %q)", missing, ds.Status, msgs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkAgentPodSecurity shows that the agent pod needs the privileged Pod
// Security level that the component sets on tkr-system: its pod spec is
// admitted there, and refused under restricted and baseline.
func checkAgentPodSecurity(ctx context.Context, t *testing.T, kube kubernetes.Interface, ds *appsv1.DaemonSet) {
	t.Helper()
	ns, err := kube.CoreV1().Namespaces().Get(ctx, agentNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := ns.Labels["pod-security.kubernetes.io/enforce"]; l != "privileged" {
		t.Errorf("namespace %s enforces Pod Security %q, want privileged", agentNamespace, l)
	}
	for _, level := range []string{"privileged", "baseline", "restricted"} {
		target := agentNamespace
		if level != "privileged" {
			target = "liberator-psa-" + level
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name: target, Labels: map[string]string{"pod-security.kubernetes.io/enforce": level},
			}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "liberator-agent-psa", Namespace: target}, Spec: *ds.Spec.Template.Spec.DeepCopy()}
		if target != agentNamespace {
			pod.Spec.ServiceAccountName = "default"
		}
		var err error
		_ = kit.Retry(30*time.Second, func() error {
			_, err = kube.CoreV1().Pods(target).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil && strings.Contains(err.Error(), "looking up service account") {
				return err // the new namespace's default ServiceAccount is not there yet
			}
			return nil
		})
		switch {
		case level == "privileged" && err != nil:
			t.Errorf("the agent pod is refused in %s: %v", target, err)
		case level != "privileged" && (err == nil || !strings.Contains(err.Error(), "violates PodSecurity")):
			t.Errorf("the agent pod under Pod Security %s: got %v, want a PodSecurity refusal", level, err)
		case level != "privileged":
			t.Logf("Pod Security %s refuses the agent pod: %v", level, err)
		}
	}
}

// checkAgentAccess asks the authorizer what the agents' ServiceAccount may
// do (its Lease verbs in tkr-system, nothing else), and that the
// controller's may watch and patch the agents' Leases.
func checkAgentAccess(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	lease := func(verb, ns string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Verb: verb, Namespace: ns, Name: "liberator-agent-" + bed.ControlPlaneNode}
	}
	for _, c := range []struct {
		sa    string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{"liberator-agent", lease("get", agentNamespace), true},
		{"liberator-agent", lease("list", agentNamespace), true},
		{"liberator-agent", lease("watch", agentNamespace), true},
		{"liberator-agent", lease("create", agentNamespace), true},
		{"liberator-agent", lease("update", agentNamespace), true},
		{"liberator-agent", lease("delete", agentNamespace), false},
		{"liberator-agent", lease("patch", agentNamespace), false},
		{"liberator-agent", lease("update", "kube-node-lease"), false},
		{"liberator-agent", lease("create", "default"), false},
		{"liberator-agent", authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: agentNamespace, Name: "liberator-agent-peer"}, false},
		{"liberator-agent", authorizationv1.ResourceAttributes{Resource: "pods", Verb: "create", Namespace: agentNamespace}, false},
		{"liberator-agent", authorizationv1.ResourceAttributes{Resource: "nodes", Verb: "get"}, false},
		{"liberator-agent", authorizationv1.ResourceAttributes{Group: "liberator.dev", Resource: "takeovers", Verb: "list"}, false},
		{"liberator", lease("watch", agentNamespace), true},
		{"liberator", lease("list", agentNamespace), true},
		{"liberator", lease("patch", agentNamespace), true},
		{"liberator", lease("update", agentNamespace), false},
		{"liberator", lease("delete", agentNamespace), false},
	} {
		user := "system:serviceaccount:" + agentNamespace + ":" + c.sa
		r, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNamespace, "system:authenticated"}, ResourceAttributes: &c.attrs,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != c.want {
			t.Errorf("%s: %s %s/%s in namespace %q: allowed %v, want %v", c.sa, c.attrs.Verb, c.attrs.Group, c.attrs.Resource, c.attrs.Namespace, r.Status.Allowed, c.want)
		}
	}
}

// checkAgentLeasePolicy writes Leases as an agent's token would (the
// ServiceAccount, with the node-name claim of its pod's node) and checks
// that config/agent-lease-policy lets it write its own node's Lease only,
// and never the controller's fence request, while the controller still may.
func checkAgentLeasePolicy(ctx context.Context, t *testing.T, kube kubernetes.Interface, admin *rest.Config, nodes []string) {
	t.Helper()
	node := nodes[len(nodes)-1]
	agent := leaseClientAs(t, admin, "liberator-agent", node)
	leases := agent.CoordinationV1().Leases(agentNamespace)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	newLease := func(name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: agentNamespace}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &node}}
	}
	denied := func(what string, err error, why string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'liberator-agent-leases'") || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: got %v, want the policy's refusal saying %q", what, err, why)
		} else {
			t.Logf("%s: refused: %v", what, err)
		}
	}
	// The API server loads a new policy within a few seconds.
	other := agentlease.LeaseName(bed.ControlPlaneNode)
	if err := kit.Retry(30*time.Second, func() error {
		_, err := leases.Create(ctx, newLease(other), dryRun)
		if err == nil {
			return errors.New("admitted")
		}
		return nil
	}); err != nil {
		t.Fatalf("the agent on %s may still create the Lease %s after 30s: the policy is not in force", node, other)
	}
	_, err := leases.Create(ctx, newLease(other), dryRun)
	denied(fmt.Sprintf("the agent on %s creates the Lease of %s", node, bed.ControlPlaneNode), err, "may write only the Lease "+agentNamespace+"/"+agentlease.LeaseName(node))
	_, err = leaseClientAs(t, admin, "liberator-agent", "").CoordinationV1().Leases(agentNamespace).Create(ctx, newLease(agentlease.LeaseName(node)), dryRun)
	denied("an agent token without a node-name claim creates a Lease", err, "no node-name claim")

	own, err := leases.Create(ctx, newLease(agentlease.LeaseName(node)), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the agent on %s cannot create its own Lease: %v", node, err)
	}
	if _, err = kube.CoordinationV1().Leases(agentNamespace).Create(ctx, newLease("liberator-controller"), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	leader, err := kube.CoordinationV1().Leases(agentNamespace).Get(ctx, "liberator-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = leases.Update(ctx, leader, metav1.UpdateOptions{})
	denied("the agent updates the controller's leader Lease", err, "may write only")

	withAnnotation := func(l *coordinationv1.Lease, k, v string) *coordinationv1.Lease {
		l = l.DeepCopy()
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[k] = v
		return l
	}
	_, err = leases.Update(ctx, withAnnotation(own, agentlease.FenceRequest, "forged"), metav1.UpdateOptions{})
	denied("the agent writes its own fence request", err, "is the controller's to write")

	controller := leaseClientAs(t, admin, "liberator", "").CoordinationV1().Leases(agentNamespace)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"takeover-1"}}}`, agentlease.FenceRequest)
	if own, err = controller.Patch(ctx, own.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("the controller cannot write the fence request: %v", err)
	}
	if own, err = leases.Update(ctx, withAnnotation(own, agentlease.FenceAck, "takeover-1"), metav1.UpdateOptions{}); err != nil {
		t.Errorf("the agent cannot acknowledge the fence request on its own Lease: %v", err)
	} else {
		delete(own.Annotations, agentlease.FenceRequest)
		_, err = leases.Update(ctx, own, metav1.UpdateOptions{})
		denied("the agent removes the controller's fence request", err, "is the controller's to write")
	}
}

// leaseClientAs is a clientset that impersonates a ServiceAccount of
// tkr-system, with the node-name claim of a pod's token when node is set.
func leaseClientAs(t *testing.T, admin *rest.Config, sa, node string) kubernetes.Interface {
	t.Helper()
	rc := rest.CopyConfig(admin)
	rc.WarningHandler = rest.NoWarnings{}
	rc.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + agentNamespace + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNamespace, "system:authenticated"},
	}
	if node != "" {
		rc.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
	}
	k, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
