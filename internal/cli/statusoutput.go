package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/pause"
)

// NodeStatusKind is the kind of a node's row in `status -o json|yaml`, in
// the API group of the Takeovers (apiVersion liberator.dev/v1alpha1). It is
// computed by the command, not served by the API server.
const NodeStatusKind = "NodeStatus"

// NodeStatusObject is a node's row as an object: apiVersion, kind,
// metadata.name, the time it was computed, and the row's fields.
type NodeStatusObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	// Time is when the command read the cluster (LeaseAgeSeconds is
	// counted to it).
	Time time.Time `json:"time"`
	NodeStatus
}

// statusObjects are what `status -o json|yaml|name|jsonpath=...` prints.
type statusObjects struct {
	now  time.Time
	rows []NodeStatus
	tks  []v1alpha1.Takeover
	// pause is the pause in force (liberator pause), nil when none: the
	// List's annotations carry it.
	pause *pause.State
}

// The annotations of status -o json|yaml's List while liberator is paused.
const (
	pauseAnnotationBy     = "liberator.dev/paused-by"
	pauseAnnotationSince  = "liberator.dev/paused-since"
	pauseAnnotationReason = "liberator.dev/paused-reason"
)

func statusList(now time.Time, rows []NodeStatus, tks []v1alpha1.Takeover) statusObjects {
	return statusObjects{now: now, rows: rows, tks: tks}
}

// list is what `status -o json|yaml|name|jsonpath=...` prints, as `kubectl
// get` does: a v1 List whose items are each node's status and, for one
// NODE, its Takeovers (oldest first), each with apiVersion and kind.
func (s statusObjects) list() (*unstructured.UnstructuredList, error) {
	now, rows, tks := s.now, s.rows, s.tks
	l := &unstructured.UnstructuredList{Object: map[string]any{"metadata": map[string]any{}}}
	l.SetAPIVersion("v1")
	l.SetKind("List")
	if p := s.pause; p != nil {
		l.Object["metadata"] = map[string]any{"annotations": map[string]any{
			pauseAnnotationBy: p.By, pauseAnnotationSince: p.Since.UTC().Format(time.RFC3339), pauseAnnotationReason: p.Reason}}
	}
	add := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(b); err != nil {
			return err
		}
		l.Items = append(l.Items, u)
		return nil
	}
	for _, r := range rows {
		o := NodeStatusObject{APIVersion: v1alpha1.GroupVersion.String(), Kind: NodeStatusKind, Time: now.UTC(), NodeStatus: r}
		o.Metadata.Name = r.Name
		if err := add(o); err != nil {
			return nil, err
		}
	}
	for _, t := range tks {
		t.APIVersion, t.Kind = v1alpha1.GroupVersion.String(), "Takeover"
		if err := add(t); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// statusPrintFlags are cli-runtime's printers for status -o: json, yaml,
// name, jsonpath=, jsonpath-as-json=, go-template= and their file variants.
func statusPrintFlags(format string) *genericclioptions.PrintFlags {
	p := genericclioptions.NewPrintFlags("")
	p.OutputFormat = &format
	return p
}

// checkStatusOutput refuses, as a usage error, an output format status does
// not have, before the cluster is read.
func checkStatusOutput(format, node string) error {
	switch format {
	case "", "wide":
		return nil
	case "html", "svg":
		if node == "" {
			return usageErrorf("-o %s draws one node's Takeovers: give a NODE (liberator status NODE -o %s)", format, format)
		}
		return nil
	}
	if _, err := statusPrintFlags(format).ToPrinter(); err != nil {
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			return usageErrorf("unknown output format %q: use %s", format, formatList(statusFormats))
		}
		return usageErrorf("-o %s: %v", format, err)
	}
	return nil
}

// printStatusObjects prints l with the cli-runtime printer of format.
func printStatusObjects(w io.Writer, format string, s statusObjects) error {
	l, err := s.list()
	if err != nil {
		return err
	}
	p, err := statusPrintFlags(format).ToPrinter()
	if err != nil {
		return usageErrorf("-o %s: %v", format, err)
	}
	if err := p.PrintObj(l, w); err != nil {
		if strings.HasPrefix(format, "jsonpath") || strings.HasPrefix(format, "go-template") {
			return fmt.Errorf("-o %s: %w", format, err)
		}
		return err
	}
	return nil
}
