// Command normalize-manifests reads Kubernetes objects (a YAML stream, as
// kustomize build or helm template write it) on stdin and writes them in a
// canonical form on stdout, so that two renderings of the same objects
// compare equal with diff:
//
//   - objects sorted by API group, kind, namespace and name; keys sorted;
//     comments dropped;
//   - the labels only Helm sets (helm.sh/chart, app.kubernetes.io/managed-by,
//     app.kubernetes.io/instance, app.kubernetes.io/version) removed from
//     metadata.labels, and the checksum/config pod annotation the chart uses
//     to restart the controller on a config change removed;
//   - a ConfigMap key holding a ControllerConfig replaced by the effective
//     configuration: the file decoded over the defaults and validated
//     exactly as the controller does at start-up (a file the controller
//     would reject is an error here).
//
// hack/verify-chart.sh uses it to prove that the Helm chart and config/
// install the same objects.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/internal/config"
)

// helmLabels are set by the chart on every object and by nothing in config/.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// helmPodAnnotations are set by the chart on the controller's pod template.
var helmPodAnnotations = []string{"checksum/config"}

func main() {
	out, err := normalize(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "normalize-manifests:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(out)
}

type object = map[string]any

func normalize(r io.Reader) ([]byte, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []object
	seen := map[string]bool{}
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(o) == 0 {
			continue
		}
		if err := clean(o); err != nil {
			return nil, fmt.Errorf("%s: %w", id(o), err)
		}
		k := sortKey(o)
		if seen[k] {
			return nil, fmt.Errorf("%s appears twice", id(o))
		}
		seen[k] = true
		objs = append(objs, o)
	}
	sort.Slice(objs, func(i, j int) bool { return sortKey(objs[i]) < sortKey(objs[j]) })
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "--- # %s\n", id(o))
		b.Write(y)
	}
	return b.Bytes(), nil
}

func clean(o object) error {
	if labels := get(o, "metadata", "labels"); labels != nil {
		for _, l := range helmLabels {
			delete(labels, l)
		}
		if len(labels) == 0 {
			delete(get(o, "metadata"), "labels")
		}
	}
	if tmeta := get(o, "spec", "template", "metadata"); tmeta != nil {
		if ann, _ := tmeta["annotations"].(map[string]any); ann != nil {
			for _, a := range helmPodAnnotations {
				delete(ann, a)
			}
			if len(ann) == 0 {
				delete(tmeta, "annotations")
			}
		}
	}
	if o["kind"] == "ConfigMap" {
		data, _ := o["data"].(map[string]any)
		for k, v := range data {
			s, _ := v.(string)
			if !strings.Contains(s, config.Kind) {
				continue
			}
			eff, err := effective(s)
			if err != nil {
				return fmt.Errorf("data[%s]: %w", k, err)
			}
			data[k] = eff
		}
	}
	return nil
}

// effective is the configuration the controller would run with.
func effective(file string) (string, error) {
	var head struct{ Kind string }
	if err := yaml.Unmarshal([]byte(file), &head); err != nil || head.Kind != config.Kind {
		return file, nil
	}
	c := config.Default()
	if err := config.Parse([]byte(file), c); err != nil {
		return "", fmt.Errorf("the controller would reject this config: %w", err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		return "", err
	}
	return "# effective configuration (defaults applied)\n" + string(y), nil
}

func get(o object, path ...string) map[string]any {
	cur := o
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func str(o object, path ...string) string {
	m := get(o, path[:len(path)-1]...)
	if m == nil {
		return ""
	}
	s, _ := m[path[len(path)-1]].(string)
	return s
}

func sortKey(o object) string {
	group := str(o, "apiVersion")
	if i := strings.LastIndex(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	return strings.Join([]string{group, str(o, "kind"), str(o, "metadata", "namespace"), str(o, "metadata", "name")}, "\x00")
}

func id(o object) string {
	s := str(o, "kind") + " "
	if ns := str(o, "metadata", "namespace"); ns != "" {
		s += ns + "/"
	}
	return s + str(o, "metadata", "name")
}
