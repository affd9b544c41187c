package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest config file read: what a ConfigMap holds.
const MaxFileSize = 1 << 20

// maxValues bounds the values of a file the decoder visits (an alias
// counts each time it is used), so that no file makes it run long.
const maxValues = 300_000

// decoder reads a YAML file into a Config strictly: every key must be the
// JSON name of a field exactly (case included), every value of the field's
// type. It goes on after a problem, so that one pass reports them all, and
// notes the fields whose value it refused (failed): validation skips them
// and the fields within them, which would only repeat the same problem.
type decoder struct {
	err    *Error
	failed map[string]bool
	// holdsFailed are the fields that hold a refused one.
	holdsFailed map[string]bool
	values      int
	fields      map[reflect.Type]map[string]int
}

func (d *decoder) problem(line int, field, format string, args ...any) {
	d.err.add(&Problem{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.problem(n.Line, path, format, args...)
	d.markFailed(path)
}

// markFailed notes that the value of path was refused.
func (d *decoder) markFailed(path string) {
	d.failed[path] = true
	for p := parent(path); p != "" && !d.holdsFailed[p]; p = parent(p) {
		d.holdsFailed[p] = true
	}
}

// hasFailed reports whether field, or a field holding it, was refused.
func (d *decoder) hasFailed(field string) bool {
	for ; field != ""; field = parent(field) {
		if d.failed[field] {
			return true
		}
	}
	return false
}

// decodeFile parses b, a whole file, over c. It returns the problems of the
// file as it is written (nil when none) and the line of each field.
func decodeFile(b []byte, c *Config) (*decoder, map[string]int) {
	d := &decoder{err: &Error{lines: map[string]int{}}, failed: map[string]bool{}, holdsFailed: map[string]bool{},
		fields: map[reflect.Type]map[string]int{}}
	if len(b) > MaxFileSize {
		d.problem(0, "", "the file has %d bytes, more than a ConfigMap holds (%d)", len(b), MaxFileSize)
		return d, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		d.problem(0, "", "the file is empty (or holds only comments): write the configuration in it, starting with apiVersion: %s and kind: %s, or pass no --config to run with the defaults", APIVersion, Kind)
		return d, nil
	} else if err != nil {
		line, msg := yamlError(err)
		d.problem(line, "", "%s (the file is not valid YAML)", msg)
		return d, nil
	}
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		d.problem(separatorLine(b, doc.Line), "", "a second YAML document (after ---): the file must hold one %s only", Kind)
		return d, nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" && root.Value == "":
		d.problem(0, "", "the file is empty (it holds only a document marker): write the configuration in it, starting with apiVersion: %s and kind: %s, or pass no --config to run with the defaults", APIVersion, Kind)
		return d, nil
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		d.problem(root.Line, "", "the file holds no configuration (it is null): write the fields, starting with apiVersion: %s and kind: %s", APIVersion, Kind)
		return d, nil
	case root.Kind != yaml.MappingNode:
		d.problem(root.Line, "", "the file must be a mapping of fields (apiVersion, kind, unhealthyAfter, ...), not %s", describe(root))
		return d, nil
	case len(root.Content) == 0:
		d.problem(root.Line, "", "the file holds no configuration ({}): write the fields, starting with apiVersion: %s and kind: %s", APIVersion, Kind)
		return d, nil
	}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	d.checkHeader(root)
	return d, d.err.lines
}

// checkHeader refuses a file that does not say what it is.
func (d *decoder) checkHeader(root *yaml.Node) {
	has := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		has[root.Content[i].Value] = true
	}
	apiVersion := has["apiVersion"] || d.hasFailed("apiVersion")
	kind := has["kind"] || d.hasFailed("kind")
	switch {
	case !apiVersion && !kind:
		d.problem(0, "", "apiVersion and kind: missing: the file must start with apiVersion: %s and kind: %s", APIVersion, Kind)
	case !apiVersion:
		d.problem(0, "apiVersion", "missing: want apiVersion: %s", APIVersion)
	case !kind:
		d.problem(0, "kind", "missing: want kind: %s", Kind)
	}
}

// separatorLine is the line of the --- that starts the document after the
// one starting on line first.
func separatorLine(b []byte, first int) int {
	for i, l := range strings.Split(string(b), "\n") {
		if i+1 > first && (l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") || strings.HasPrefix(l, "---\r")) {
			return i + 1
		}
	}
	return 0
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError splits a YAML parser's error into its line (0 when it names
// none) and its message.
func yamlError(err error) (int, string) {
	s := err.Error()
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, s[len(m[0]):]
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

// describe names what a YAML node is, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return "a string"
		}
		return "a number or other scalar"
	}
	return "an unusual YAML node"
}

// got shows a scalar as the file wrote it: strings quoted, other values as
// they are.
func got(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return describe(n)
	}
	v := cut(n.Value, maxValueLen)
	if n.ShortTag() == "!!str" {
		return strconv.Quote(v)
	}
	return v
}

// jsonUnmarshaler is implemented by the types that read themselves
// (Duration, intstr.IntOrString).
var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decode reads n into v; path is v's field path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.values++; d.values > maxValues {
		if d.values == maxValues+1 {
			d.fail(n, path, "the file has more than %d values (or aliases that repeat them): it cannot be a controller configuration", maxValues)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "an alias to nothing")
			return
		}
		n = n.Alias
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	if reflect.PointerTo(v.Type()).Implements(jsonUnmarshaler) {
		d.decodeSelf(n, v, path, null)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if null {
			return // left out, as if not written
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if !null {
			d.decodeStruct(n, v, path)
		}
	case reflect.Slice:
		d.decodeSlice(n, v, path, null)
	case reflect.Map:
		d.decodeMap(n, v, path, null)
	default:
		d.decodeScalar(n, v, path, null)
	}
}

// decodeSelf reads a value whose type unmarshals itself from JSON.
func (d *decoder) decodeSelf(n *yaml.Node, v reflect.Value, path string, null bool) {
	var b []byte
	switch {
	case null:
		d.fail(n, path, "no value: write one, or leave the field out for its default")
		return
	case n.Kind != yaml.ScalarNode:
		d.fail(n, path, "want a single value, got %s", describe(n))
		return
	case n.ShortTag() == "!!int" || n.ShortTag() == "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			d.fail(n, path, "want a single value, got %s", got(n))
			return
		}
		b, _ = json.Marshal(f)
	case n.ShortTag() == "!!bool":
		b = []byte(strconv.FormatBool(n.Value == "true"))
	default:
		b, _ = json.Marshal(n.Value)
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
		d.fail(n, path, "%s", cut(err.Error(), maxLineLen))
	}
}

// decodeStruct reads a mapping into a struct, field by field.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of fields, got %s", got(n))
		return
	}
	fields := d.fields[v.Type()]
	if fields == nil {
		fields = jsonFields(v.Type())
		d.fields[v.Type()] = fields
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		if !d.key(k, path, seen) {
			continue
		}
		idx, ok := fields[name]
		if !ok {
			d.unknown(k, path, name, fields)
			continue
		}
		fp := join(path, name)
		d.err.lines[fp] = k.Line
		d.decode(val, v.Field(idx), fp)
	}
}

// key checks that a mapping key is a plain string written once.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]int) bool {
	if k.Kind != yaml.ScalarNode {
		d.fail(k, path, "a key must be a name, not %s", describe(k))
		return false
	}
	if k.Value == "" {
		// A null or empty key ("? " alone, or ""): nothing to name.
		d.fail(k, path, "a key must be a name, not an empty key")
		return false
	}
	if first, dup := seen[k.Value]; dup {
		d.fail(k, join(path, k.Value), "written twice (first on line %d)", first)
		return false
	}
	seen[k.Value] = k.Line
	if k.Value == "<<" {
		d.problem(k.Line, path, "merge keys (<<) are not supported: write the fields out")
		return false
	}
	return true
}

// unknown reports a key that is no field, with the field meant when one is
// close; that field counts as refused, so that it is not also reported as
// missing.
func (d *decoder) unknown(k *yaml.Node, path, name string, fields map[string]int) {
	hint := ""
	if s := suggest(name, fields); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
		d.markFailed(join(path, s))
	}
	d.problem(k.Line, path, "unknown field %q%s", cut(name, maxValueLen), hint)
}

// decodeSlice reads a list.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, null bool) {
	if null {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s", got(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		d.err.lines[ep] = e.Line
		d.decode(e, s.Index(i), ep)
	}
	v.Set(s)
}

// decodeMap reads a mapping with string keys (node names, option names).
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, null bool) {
	if null {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", got(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "cannot read a map keyed by %s", v.Type().Key())
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.key(k, path, seen) {
			continue
		}
		ep := path + "." + k.Value
		d.err.lines[ep] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, ep)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}
