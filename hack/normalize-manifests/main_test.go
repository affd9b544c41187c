package main

import (
	"strings"
	"testing"
)

const helmStyle = `# Source: liberator/templates/a.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: liberator-config
  namespace: tkr-system
  labels:
    app.kubernetes.io/name: liberator
    helm.sh/chart: liberator-0.1.0
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/instance: x
data:
  config.yaml: |
    apiVersion: config.liberator.dev/v1alpha1
    kind: ControllerConfig
    maxConcurrent: 3
    unhealthyAfter: 40s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: c
  namespace: tkr-system
  labels:
    helm.sh/chart: liberator-0.1.0
spec:
  template:
    metadata:
      annotations:
        checksum/config: abc
      labels:
        app: c
`

// The kustomize side of the same objects: other order, no Helm labels, the
// config written differently (comments, defaults left out).
const kustomizeStyle = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: c
  namespace: tkr-system
spec:
  template:
    metadata:
      labels:
        app: c
---
apiVersion: v1
data:
  config.yaml: |
    apiVersion: config.liberator.dev/v1alpha1
    kind: ControllerConfig
    unhealthyAfter: 40s   # the default
kind: ConfigMap
metadata:
  labels:
    app.kubernetes.io/name: liberator
  name: liberator-config
  namespace: tkr-system
`

func TestSameObjectsCompareEqual(t *testing.T) {
	a, err := normalize(strings.NewReader(helmStyle))
	if err != nil {
		t.Fatal(err)
	}
	b, err := normalize(strings.NewReader(kustomizeStyle))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("normalized forms differ:\n%s\n---- vs ----\n%s", a, b)
	}
	if strings.Contains(string(a), "helm.sh/chart") || strings.Contains(string(a), "checksum/config") {
		t.Errorf("Helm-only metadata left:\n%s", a)
	}
}

func TestDifferencesRemain(t *testing.T) {
	a, _ := normalize(strings.NewReader(kustomizeStyle))
	for _, edit := range []struct{ old, new string }{
		{"app: c", "app: d"},                           // a real label
		{"unhealthyAfter: 40s", "unhealthyAfter: 41s"}, // a config value
		{"name: c", "name: e"},                         // an object's name
	} {
		b, err := normalize(strings.NewReader(strings.Replace(kustomizeStyle, edit.old, edit.new, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) == string(b) {
			t.Errorf("changing %q to %q makes no difference", edit.old, edit.new)
		}
	}
}

func TestBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"invalid config": strings.Replace(kustomizeStyle, "unhealthyAfter: 40s", "unhealthyAfter: 40", 1),
		"unknown field":  strings.Replace(kustomizeStyle, "unhealthyAfter: 40s", "unhealthyAfterr: 40s", 1),
		"duplicate":      kustomizeStyle + "---\n" + kustomizeStyle,
	} {
		if _, err := normalize(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
