package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// -o json and yaml are a List, as kubectl get prints: each node's status
// and, for one NODE, its Takeovers, each with apiVersion and kind.
func TestStatusPrinterDocuments(t *testing.T) {
	s := fixture()
	rows := nodeStatuses(s)
	for _, format := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := printStatusObjects(&b, format, statusList(s.Now, rows, nil)); err != nil {
			t.Fatal(err)
		}
		golden(t, "status."+format+".golden", b.Bytes())
		data := b.Bytes()
		if format == "yaml" {
			var err error
			if data, err = yaml.YAMLToJSON(data); err != nil {
				t.Fatal(err)
			}
		}
		var doc struct {
			APIVersion, Kind string
			Items            []struct {
				APIVersion, Kind, Name string
				Metadata               struct{ Name string }
			}
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.APIVersion != "v1" || doc.Kind != "List" || len(doc.Items) != len(rows) {
			t.Fatalf("-o %s: %s %s with %d items, want v1 List with %d", format, doc.APIVersion, doc.Kind, len(doc.Items), len(rows))
		}
		for i, it := range doc.Items {
			if it.APIVersion != "liberator.dev/v1alpha1" || it.Kind != "NodeStatus" || it.Metadata.Name != rows[i].Name || it.Name != rows[i].Name {
				t.Errorf("-o %s item %d: %+v", format, i, it)
			}
		}
	}

	// One node: its status and its Takeovers.
	var tks []v1alpha1.Takeover
	for _, tk := range s.Takeovers {
		if tk.Spec.NodeName == "worker-1" {
			tks = append(tks, tk)
		}
	}
	var b bytes.Buffer
	if err := printStatusObjects(&b, "name", statusList(s.Now, rows[1:2], tks)); err != nil {
		t.Fatal(err)
	}
	want := "nodestatus.liberator.dev/worker-1\n"
	for _, tk := range tks {
		want += "takeover.liberator.dev/" + tk.Name + "\n"
	}
	if b.String() != want {
		t.Errorf("-o name of worker-1:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := printStatusObjects(&b, `jsonpath={.items[?(@.kind=="Takeover")].status.phase}`, statusList(s.Now, rows[1:2], tks)); err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, tk := range tks {
		phases = append(phases, string(tk.Status.Phase))
	}
	if b.String() != strings.Join(phases, " ") {
		t.Errorf("-o jsonpath of the Takeovers' phases: %q, want %q", b.String(), strings.Join(phases, " "))
	}
}

func TestStatusPrinterJSONPath(t *testing.T) {
	s := fixture()
	rows := nodeStatuses(s)
	for format, want := range map[string]string{
		"jsonpath={.items[*].metadata.name}":                                 "control-plane-1 worker-1 worker-2 worker-3",
		`jsonpath={range .items[?(@.outOfService==true)]}{.name}{"\n"}{end}`: "worker-1\n",
		"jsonpath={.items[1].takeover.phase}":                                string(rows[1].Takeover.Phase),
		"go-template={{range .items}}{{.kind}} {{end}}":                      "NodeStatus NodeStatus NodeStatus NodeStatus ",
	} {
		var b bytes.Buffer
		if err := printStatusObjects(&b, format, statusList(s.Now, rows, nil)); err != nil {
			t.Errorf("-o %s: %v", format, err)
			continue
		}
		if b.String() != want {
			t.Errorf("-o %s: %q, want %q", format, b.String(), want)
		}
	}
	if err := printStatusObjects(&bytes.Buffer{}, "jsonpath={.items[", statusList(s.Now, rows, nil)); err == nil {
		t.Error("a broken jsonpath template is accepted")
	}
}

// --no-headers leaves the header line out of the tables, nothing else.
func TestStatusNoHeaders(t *testing.T) {
	rows := nodeStatuses(fixture())
	for _, wide := range []bool{false, true} {
		var with, without bytes.Buffer
		if err := printStatusTable(&with, rows, wide, false); err != nil {
			t.Fatal(err)
		}
		if err := printStatusTable(&without, rows, wide, true); err != nil {
			t.Fatal(err)
		}
		// The columns are as wide as their widest cell, the header's
		// included; compare the cells.
		cells := func(s string) (c [][]string) {
			for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
				c = append(c, strings.Fields(l))
			}
			return c
		}
		w, wo := cells(with.String()), cells(without.String())
		if w[0][0] != "NAME" || fmt.Sprint(wo) != fmt.Sprint(w[1:]) {
			t.Errorf("wide=%v: --no-headers output:\n%s\nwant the table without its first line:\n%s", wide, without.String(), with.String())
		}
	}
}

// The output formats are checked before the cluster is read: an unknown
// one is a usage error.
func TestStatusOutputFormats(t *testing.T) {
	for _, f := range []string{"json", "yaml", "name", "wide", "jsonpath={.items}", "go-template={{.kind}}"} {
		if err := checkStatusOutput(f, ""); err != nil {
			t.Errorf("-o %s refused: %v", f, err)
		}
	}
	for _, f := range []string{"toml", "jsonpath", "custom-columns=A:.a"} {
		if err := checkStatusOutput(f, ""); ExitCode(err) != ExitUsage {
			t.Errorf("-o %s: %v (exit %d), want a usage error", f, err, ExitCode(err))
		}
	}
	if err := checkStatusOutput("svg", ""); ExitCode(err) != ExitUsage {
		t.Errorf("-o svg without a NODE: %v", err)
	}
}
