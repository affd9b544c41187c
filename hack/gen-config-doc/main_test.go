package main

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/internal/config"
)

// Every object in the chart's values schema says whether it takes keys it
// does not list: unknown keys are rejected everywhere except in maps
// (labels, annotations, resource quantities), which say so explicitly.
func TestValuesSchemaIsClosed(t *testing.T) {
	b, err := os.ReadFile("../../" + schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var open []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if isObjectSchema(v) {
				if _, ok := v["additionalProperties"]; !ok {
					open = append(open, path)
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"/[]", c)
			}
		}
	}
	walk("", s)
	sort.Strings(open)
	for _, p := range open {
		t.Errorf("%s: an object schema without additionalProperties (false, or the schema of a map's values)", p)
	}
}

func isObjectSchema(v map[string]any) bool {
	switch t := v["type"].(type) {
	case string:
		return t == "object"
	case []any:
		for _, x := range t {
			if x == "object" {
				return true
			}
		}
	}
	return false
}

// The config block of the chart's values.yaml sets every field, to the
// controller's default (but for the namespace, which the chart fills in:
// namespace.name, else the release's).
func TestValuesConfigIsTheDefault(t *testing.T) {
	b, err := os.ReadFile("../../" + valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Namespace struct{ Name string }
		Config    map[string]any
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	cfg := values.Config
	cfg["apiVersion"], cfg["kind"] = config.APIVersion, config.Kind
	// namespace.name empty: the release's namespace, tkr-system with
	// `helm install -n tkr-system` (the controller's default).
	ns := values.Namespace.Name
	if ns == "" {
		ns = config.Default().LeaderElection.Namespace
	}
	cfg["leaderElection"].(map[string]any)["namespace"] = ns
	file, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Decoded over nothing, the block alone must give the defaults.
	got := &config.Config{}
	if err := config.Parse(file, got); err != nil {
		t.Fatalf("the controller rejects the config of values.yaml: %v", err)
	}
	want := config.Default()
	if len(got.Fencing.Classes) == 0 {
		got.Fencing.Classes = nil
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(want)
		t.Errorf("values.yaml config:\n%s\nconfig.Default():\n%s\nrun hack/update-docs.sh", g, w)
	}
	if !strings.Contains(string(b), beginMarker) || !strings.Contains(string(b), endMarker) {
		t.Errorf("values.yaml lacks the generated-block markers")
	}
}
