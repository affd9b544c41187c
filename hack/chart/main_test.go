package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"gopkg.in/yaml.v3"
)

// TestMain: with LIBERATOR_CA_CHECK_URL set, the test binary is the child
// of TestCABundleTrusted: one HTTPS GET with Go's system roots, which a new
// process reads from SSL_CERT_DIR.
func TestMain(m *testing.M) {
	if url := os.Getenv("LIBERATOR_CA_CHECK_URL"); url != "" {
		resp, err := http.Get(url)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		resp.Body.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helmPath is the helm that hack/tools/manifest-tools.sh builds at the
// version pinned in hack/tools/codegen/go.mod (LIBERATOR_HELM names one
// already built). Without it the tests fail: they do not skip.
func helmPath(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		if h := os.Getenv("LIBERATOR_HELM"); h != "" {
			helmBin = h
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot(t), "hack/tools/manifest-tools.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("hack/tools/manifest-tools.sh (builds helm): %v", err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		helmBin = filepath.Join(lines[len(lines)-1], "helm")
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmBin
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helmEnv keeps helm's configuration, cache and registry logins in the
// test's own directories.
func helmEnv(t *testing.T) []string {
	dir := t.TempDir()
	return append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(dir, "registry.json"),
	)
}

func runHelm(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// object is one decoded object (yaml.v3 decodes nested mappings as the
// same map type).
type object = map[string]any

// decode splits rendered manifests into objects.
func decode(t *testing.T, y []byte) []object {
	t.Helper()
	var objs []object
	d := yaml.NewDecoder(bytes.NewReader(y))
	for {
		var o object
		err := d.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode the rendered manifests: %v\n%s", err, y)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func id(o object) string {
	return fmt.Sprintf("%v %v/%v", o["kind"], get(o, "metadata", "namespace"), get(o, "metadata", "name"))
}

// template renders the chart in the tree (charts/liberator) with args.
func template(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := runHelm(t, helmEnv(t), append([]string{"template", "liberator", filepath.Join(repoRoot(t), "charts/liberator")}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// workloads are the Deployments and DaemonSets, by name.
func workloads(objs []object) map[string]object {
	w := map[string]object{}
	for _, o := range objs {
		if o["kind"] == "Deployment" || o["kind"] == "DaemonSet" {
			w[fmt.Sprint(get(o, "metadata", "name"))] = o
		}
	}
	return w
}

func TestChartVersion(t *testing.T) {
	cases := map[string]string{
		"v1.2.3":                  "1.2.3",
		"v1.2.3-rc.1":             "1.2.3-rc.1",
		"v0.1.0-5-gabc1234":       "0.1.0-5-gabc1234",
		"v0.1.0-5-gabc1234-dirty": "0.1.0-5-gabc1234-dirty",
		"ab4b143":                 "0.0.0-ab4b143",
		"ab4b143-dirty":           "0.0.0-ab4b143-dirty",
		"0124080":                 "0.0.0-g0124080",
		"0124080-dirty":           "0.0.0-0124080-dirty",
		"1234567":                 "0.0.0-1234567",
		"dev":                     "0.0.0-dev",
	}
	out := t.TempDir()
	chart := filepath.Join(repoRoot(t), "charts/liberator")
	for describe, want := range cases {
		if got := ChartVersion(describe); got != want {
			t.Errorf("ChartVersion(%q) = %q, want %q", describe, got, want)
			continue
		}
		// Helm is the judge of what a chart version may be.
		pkg, err := Package(helmPath(t), chart, out, describe)
		if err != nil {
			t.Errorf("%s: %v", describe, err)
			continue
		}
		if filepath.Base(pkg) != "liberator-"+want+".tgz" {
			t.Errorf("%s: package %s", describe, pkg)
		}
		meta, err := runHelm(t, helmEnv(t), "show", "chart", pkg)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Version    string `yaml:"version"`
			AppVersion string `yaml:"appVersion"`
		}
		if err := yaml.Unmarshal(meta, &m); err != nil {
			t.Fatal(err)
		}
		if m.Version != want || m.AppVersion != describe {
			t.Errorf("%s: the package says version %q, appVersion %q; want %q, %q", describe, m.Version, m.AppVersion, want, describe)
		}
	}
	// The check has teeth: helm refuses the version the mapping avoids.
	if _, err := runHelm(t, helmEnv(t), "package", chart, "--version", "0.0.0-0124080", "--destination", out); err == nil {
		t.Error("helm package accepted the version 0.0.0-0124080 (a numeric pre-release with a leading zero): the mapping above proves nothing")
	}
}

// TestOCIArtifact packages the chart as `make chart` does, pushes it to a
// registry (go-containerregistry's, in memory) with `helm push`, and
// installs nothing but renders it from there: the OCI reference works, the
// artifact carries Helm's media types, and the chart from the registry
// runs the image of its appVersion.
func TestOCIArtifact(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const describe = "v0.2.0-3-gabc1234"
	const version = "0.2.0-3-gabc1234"

	pkg, err := Package(helmPath(t), filepath.Join(repoRoot(t), "charts/liberator"), t.TempDir(), describe)
	if err != nil {
		t.Fatal(err)
	}
	env := helmEnv(t)
	for _, kv := range env[len(env)-4:] {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	repo := "oci://" + host + "/charts"
	if err := Push(helmPath(t), pkg, repo, true); err != nil {
		t.Fatal(err)
	}
	if err := Push(helmPath(t), pkg, "https://"+host+"/charts", true); err == nil {
		t.Error("Push to an https:// repository: want a refusal (helm push takes oci:// only)")
	}

	// The manifest, as a registry client reads it (OCI distribution API).
	ref := host + "/charts/liberator:" + version
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v2/charts/liberator/manifests/"+version, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the pushed chart is not in the registry: GET %s: %s %v\n%s", ref, resp.Status, err, body)
	}
	var manifest struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &manifest); err != nil {
		t.Fatal(err)
	}
	var layers []string
	for _, l := range manifest.Layers {
		layers = append(layers, l.MediaType)
	}
	t.Logf("%s: manifest %s, config %s, layers %v", ref, manifest.MediaType, manifest.Config.MediaType, layers)
	if manifest.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" {
		t.Errorf("config media type %q, want application/vnd.cncf.helm.config.v1+json", manifest.Config.MediaType)
	}
	if !slices.Contains(layers, "application/vnd.cncf.helm.chart.content.v1.tar+gzip") {
		t.Errorf("layers %v: no application/vnd.cncf.helm.chart.content.v1.tar+gzip", layers)
	}

	out, err := runHelm(t, env, "template", "liberator", repo+"/liberator", "--version", version, "--plain-http", "-n", "liberator-oci")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	w := workloads(objs)
	ctl, ok := w["liberator-controller"]
	if !ok {
		t.Fatalf("the chart from %s renders no liberator-controller (%d objects)", repo, len(objs))
	}
	if img := get(ctl, "spec", "template", "spec", "containers", 0, "image"); img != "ghcr.io/liberator-dev/liberator:"+describe {
		t.Errorf("the chart from the registry runs the image %v, want its appVersion's, ghcr.io/liberator-dev/liberator:%s", img, describe)
	}
	if ns := get(ctl, "metadata", "namespace"); ns != "liberator-oci" {
		t.Errorf("the chart from the registry renders the controller in namespace %v, want the release's, liberator-oci", ns)
	}
}

// TestDefaultImageTag: the chart in the tree runs the image of its
// appVersion, never "latest", and its appVersion is its version.
func TestDefaultImageTag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "charts/liberator/Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.AppVersion != "v"+c.Version {
		t.Errorf("Chart.yaml: appVersion %q, want v%s (the version's tag)", c.AppVersion, c.Version)
	}
	objs := template(t, "--set", "agent.enabled=true", "-n", "tkr-system")
	w := workloads(objs)
	for _, n := range []string{"liberator-controller", "liberator-agent"} {
		img := fmt.Sprint(get(w[n], "spec", "template", "spec", "containers", 0, "image"))
		if img != "ghcr.io/liberator-dev/liberator:"+c.AppVersion {
			t.Errorf("%s runs %s, want ghcr.io/liberator-dev/liberator:%s (the appVersion)", n, img, c.AppVersion)
		}
	}
	if _, err := runHelm(t, helmEnv(t), "template", "liberator", filepath.Join(repoRoot(t), "charts/liberator"), "--set", "image.tag=latest"); err == nil {
		t.Error("image.tag=latest renders: the schema must refuse it")
	}
}

// namespaced are the kinds liberator ships that live in a namespace.
var namespaced = []string{"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "DaemonSet", "Service", "PodDisruptionBudget", "Secret", "ServiceMonitor", "PrometheusRule"}

// TestReleaseNamespace: with namespace.name empty (the default) every
// object goes to the release's namespace (-n), the leader election Lease
// and the agents' Leases too; the node heartbeat Role stays in
// kube-node-lease. namespace.name still overrides it.
func TestReleaseNamespace(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"release tkr-system", []string{"-n", "tkr-system"}, "tkr-system"},
		{"release other", []string{"-n", "other"}, "other"},
		{"namespace.name set", []string{"-n", "helm-records", "--set", "namespace.name=liberator", "--set", "namespace.create=true"}, "liberator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--set", "agent.enabled=true", "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.dashboard.enabled=true"}, tc.args...)
			objs := template(t, args...)
			n := 0
			for _, o := range objs {
				kind := fmt.Sprint(o["kind"])
				ns := get(o, "metadata", "namespace")
				name := fmt.Sprint(get(o, "metadata", "name"))
				switch {
				case kind == "Namespace":
					if name != tc.want {
						t.Errorf("%s: the chart creates the namespace %s", id(o), name)
					}
				case (kind == "Role" || kind == "RoleBinding") && name == "liberator-node-leases":
					if ns != "kube-node-lease" {
						t.Errorf("%s: want namespace kube-node-lease", id(o))
					}
				case slices.Contains(namespaced, kind):
					n++
					if ns != tc.want {
						t.Errorf("%s: want namespace %s", id(o), tc.want)
					}
				}
				if subjects, ok := o["subjects"].([]any); ok {
					for _, s := range subjects {
						if get(s, "kind") == "ServiceAccount" && get(s, "namespace") != tc.want {
							t.Errorf("%s: subject %v in namespace %v, want %s", id(o), get(s, "name"), get(s, "namespace"), tc.want)
						}
					}
				}
				if kind == "ConfigMap" && name == "liberator-config" {
					var cfg map[string]any
					if err := yaml.Unmarshal([]byte(fmt.Sprint(get(o, "data", "config.yaml"))), &cfg); err != nil {
						t.Fatal(err)
					}
					if ln := get(cfg, "leaderElection", "namespace"); ln != tc.want {
						t.Errorf("the controller config's leaderElection.namespace is %v, want %s", ln, tc.want)
					}
				}
			}
			agent := workloads(objs)["liberator-agent"]
			args0, _ := get(agent, "spec", "template", "spec", "containers", 0, "args").([]any)
			if !slices.Contains(args0, any("--namespace="+tc.want)) {
				t.Errorf("the agents' Lease namespace: args %v, want --namespace=%s", args0, tc.want)
			}
			t.Logf("%s: %d namespaced objects checked (want all in %s)", strings.Join(tc.args, " "), n, tc.want)
			if n < 10 {
				t.Errorf("only %d namespaced objects rendered", n)
			}
		})
	}
	// By default the chart leaves the release's namespace to Helm
	// (--create-namespace) and creates no Namespace.
	for _, o := range template(t, "-n", "tkr-system") {
		if o["kind"] == "Namespace" {
			t.Errorf("the default values render %s: helm install -n tkr-system would find it owned by no release", id(o))
		}
	}
}

// container and podSpec of a workload.
func podSpec(w object) map[string]any {
	m, _ := get(w, "spec", "template", "spec").(map[string]any)
	return m
}

func container(w object) map[string]any {
	m, _ := get(w, "spec", "template", "spec", "containers", 0).(map[string]any)
	return m
}

// TestSecurityContext: the defaults are the restricted ones config/ ships
// (a fixed non-root user), and the OpenShift values file
// (hack/testdata/chart-values/valid/openshift.yaml) leaves the user and
// group to the restricted-v2 SCC while keeping the rest of "restricted".
func TestSecurityContext(t *testing.T) {
	restricted := func(t *testing.T, what string, ctl object) {
		t.Helper()
		ps, c := podSpec(ctl), container(ctl)
		if get(ps, "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: runAsNonRoot is not true: pod %v, container %v", what, ps["securityContext"], c["securityContext"])
		}
		if get(ps, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
			t.Errorf("%s: pod seccompProfile %v, want RuntimeDefault", what, get(ps, "securityContext", "seccompProfile"))
		}
		if get(c, "securityContext", "allowPrivilegeEscalation") != false || get(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: container securityContext %v", what, c["securityContext"])
		}
		if drop, _ := get(c, "securityContext", "capabilities", "drop").([]any); !slices.Contains(drop, any("ALL")) {
			t.Errorf("%s: capabilities.drop %v, want ALL", what, drop)
		}
	}
	def := workloads(template(t, "-n", "tkr-system"))["liberator-controller"]
	restricted(t, "default", def)
	if u := get(podSpec(def), "securityContext", "runAsUser"); u != 65532 {
		t.Errorf("default: pod runAsUser %v, want 65532", u)
	}

	os := workloads(template(t, "-n", "liberator", "-f", filepath.Join(repoRoot(t), "hack/testdata/chart-values/valid/openshift.yaml")))["liberator-controller"]
	restricted(t, "openshift.yaml", os)
	for _, k := range []string{"runAsUser", "runAsGroup", "fsGroup"} {
		if v := get(podSpec(os), "securityContext", k); v != nil {
			t.Errorf("openshift.yaml: pod securityContext.%s = %v; restricted-v2 assigns it", k, v)
		}
		if v := get(container(os), "securityContext", k); v != nil {
			t.Errorf("openshift.yaml: container securityContext.%s = %v; restricted-v2 assigns it", k, v)
		}
	}
}

// TestExtras: extraEnv, extraVolumes and extraVolumeMounts reach the
// controller (and agent.* the agent), and caBundle mounts the bundle read
// only where the controller's TLS (Go's system roots: SSL_CERT_DIR) and the
// Python fence agents (REQUESTS_CA_BUNDLE) find it.
func TestExtras(t *testing.T) {
	w := workloads(template(t, "-n", "tkr-system", "-f", filepath.Join(repoRoot(t), "hack/testdata/chart-values/valid/extras.yaml")))
	env := func(c map[string]any) map[string]any {
		m := map[string]any{}
		l, _ := c["env"].([]any)
		for _, e := range l {
			m[fmt.Sprint(get(e, "name"))] = e
		}
		return m
	}
	named := func(l any, name string) any {
		s, _ := l.([]any)
		for _, e := range s {
			if get(e, "name") == name {
				return e
			}
		}
		return nil
	}
	ctl, agent := w["liberator-controller"], w["liberator-agent"]
	ce, ae := env(container(ctl)), env(container(agent))
	if get(ce["HTTPS_PROXY"], "value") != "http://proxy.example.com:3128" || ce["BMC_REGION"] == nil {
		t.Errorf("controller env %v: want extraEnv HTTPS_PROXY and BMC_REGION", container(ctl)["env"])
	}
	if ce["POD_NAME"] == nil || ce["POD_NAMESPACE"] == nil {
		t.Errorf("controller env %v: extraEnv replaced the chart's own", container(ctl)["env"])
	}
	if get(ae["GODEBUG"], "value") != "madvdontneed=1" || ae["NODE_NAME"] == nil {
		t.Errorf("agent env %v: want agent.extraEnv GODEBUG and the chart's NODE_NAME", container(agent)["env"])
	}
	if ae["SSL_CERT_DIR"] != nil {
		t.Errorf("agent env %v: the CA bundle is the controller's (it talks to the BMCs)", container(agent)["env"])
	}
	if v := named(podSpec(ctl)["volumes"], "scratch"); get(v, "emptyDir") == nil {
		t.Errorf("controller volumes %v: want extraVolumes scratch", podSpec(ctl)["volumes"])
	}
	if m := named(container(ctl)["volumeMounts"], "scratch"); get(m, "mountPath") != "/var/run/scratch" {
		t.Errorf("controller mounts %v: want extraVolumeMounts scratch", container(ctl)["volumeMounts"])
	}
	if v := named(podSpec(agent)["volumes"], "agent-extra"); v == nil || named(container(agent)["volumeMounts"], "agent-extra") == nil {
		t.Errorf("agent volumes %v, mounts %v: want agent.extraVolumes/extraVolumeMounts agent-extra", podSpec(agent)["volumes"], container(agent)["volumeMounts"])
	}
	if named(container(ctl)["volumeMounts"], "config") == nil || named(container(agent)["volumeMounts"], "watchdog") == nil {
		t.Error("the extra mounts replaced the chart's own")
	}

	ca := named(podSpec(ctl)["volumes"], "ca-bundle")
	if get(ca, "configMap", "name") != "bmc-ca" || get(ca, "configMap", "items", 0, "key") != "bundle.pem" || get(ca, "configMap", "items", 0, "path") != "ca.crt" {
		t.Errorf("controller volume ca-bundle %v: want the ConfigMap bmc-ca, key bundle.pem as ca.crt", ca)
	}
	m := named(container(ctl)["volumeMounts"], "ca-bundle")
	if get(m, "mountPath") != "/etc/liberator-ca" || get(m, "readOnly") != true {
		t.Errorf("controller mount ca-bundle %v: want /etc/liberator-ca, read only", m)
	}
	if v := get(ce["SSL_CERT_DIR"], "value"); v != "/etc/liberator-ca:/etc/ssl/certs" {
		t.Errorf("controller SSL_CERT_DIR %v, want /etc/liberator-ca:/etc/ssl/certs (the bundle and the image's roots)", v)
	}
	if v := get(ce["REQUESTS_CA_BUNDLE"], "value"); v != "/etc/liberator-ca/ca.crt" {
		t.Errorf("controller REQUESTS_CA_BUNDLE %v, want /etc/liberator-ca/ca.crt (fence agents in Python)", v)
	}

	// From a Secret instead.
	ctl = workloads(template(t, "-n", "tkr-system", "--set", "caBundle.secret=bmc-ca-secret"))["liberator-controller"]
	ca = named(podSpec(ctl)["volumes"], "ca-bundle")
	if get(ca, "secret", "secretName") != "bmc-ca-secret" || get(ca, "secret", "items", 0, "key") != "ca.crt" {
		t.Errorf("caBundle.secret: volume %v, want the Secret bmc-ca-secret, key ca.crt", ca)
	}
	// Neither: nothing mounted, no variable set.
	ctl = workloads(template(t, "-n", "tkr-system"))["liberator-controller"]
	if named(podSpec(ctl)["volumes"], "ca-bundle") != nil || env(container(ctl))["SSL_CERT_DIR"] != nil {
		t.Error("the default values mount a CA bundle")
	}
	// Both: refused.
	if _, err := runHelm(t, helmEnv(t), "template", "liberator", filepath.Join(repoRoot(t), "charts/liberator"), "--set", "caBundle.secret=a", "--set", "caBundle.configMap=b"); err == nil {
		t.Error("caBundle with both a ConfigMap and a Secret renders")
	}
}

// TestCABundleTrusted: the bundle the chart mounts, where the chart says
// (SSL_CERT_DIR), laid out as the kubelet writes a ConfigMap volume
// (..TIMESTAMP/ca.crt, ..data and ca.crt as symbolic links), makes Go's
// TLS, as the redfish provider uses it (no RootCAs: the system roots),
// trust a server whose certificate it signs; without it the same GET fails.
func TestCABundleTrusted(t *testing.T) {
	ctl := workloads(template(t, "-n", "tkr-system", "--set", "caBundle.configMap=bmc-ca"))["liberator-controller"]
	var certDir string
	for _, e := range container(ctl)["env"].([]any) {
		if get(e, "name") == "SSL_CERT_DIR" {
			certDir = fmt.Sprint(get(e, "value"))
		}
	}
	var mountPath, file string
	for _, m := range container(ctl)["volumeMounts"].([]any) {
		if get(m, "name") == "ca-bundle" {
			mountPath = fmt.Sprint(get(m, "mountPath"))
		}
	}
	for _, v := range podSpec(ctl)["volumes"].([]any) {
		if get(v, "name") == "ca-bundle" {
			file = fmt.Sprint(get(v, "configMap", "items", 0, "path"))
		}
	}
	if certDir == "" || mountPath == "" || file == "" {
		t.Fatalf("caBundle.configMap renders SSL_CERT_DIR %q, mount %q, file %q", certDir, mountPath, file)
	}
	if !slices.Contains(strings.Split(certDir, ":"), mountPath) {
		t.Fatalf("SSL_CERT_DIR %q does not hold the bundle's mount %s", certDir, mountPath)
	}

	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer srv.Close()
	dir := t.TempDir()
	ts := "..2026_12_02_15_00_00.000000001"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, ts, file), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", file), filepath.Join(dir, file)); err != nil {
		t.Fatal(err)
	}
	fetch := func(certDir string) error {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LIBERATOR_CA_CHECK_URL="+srv.URL, "SSL_CERT_DIR="+certDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	mounted := strings.ReplaceAll(certDir, mountPath, dir)
	if err := fetch(mounted); err != nil {
		t.Errorf("GET %s with SSL_CERT_DIR=%s (the chart's, the bundle at %s): %v", srv.URL, mounted, dir, err)
	}
	if err := fetch("/etc/ssl/certs"); err == nil {
		t.Errorf("GET %s without the bundle succeeded: the check above proves nothing", srv.URL)
	}
}
