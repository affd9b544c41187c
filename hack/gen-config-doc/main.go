// Command gen-config-doc generates, from the Go types in internal/config,
// everything that describes the controller's configuration file:
//
//   - docs/configuration.md, the reference: every field of ControllerConfig
//     and of the types it uses, with its JSON name, type, default (from
//     config.Default()) and doc comment;
//   - the "config" block of the Helm chart's values.yaml (between its
//     generated-block markers), every field with its default and comment;
//   - the "config" property of the chart's values.schema.json, a closed
//     schema (additionalProperties: false) with the fields' types.
//
// It walks the types generically with go/ast, starting at Config, so a new
// field or type appears everywhere on the next run. With -verify it writes
// nothing and fails when a file is out of date.
//
//	go run ./hack/gen-config-doc            # hack/update-docs.sh
//	go run ./hack/gen-config-doc -verify    # hack/verify.sh
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/internal/config"
)

const (
	rootType    = "Config"
	docFile     = "docs/configuration.md"
	valuesFile  = "charts/liberator/values.yaml"
	schemaFile  = "charts/liberator/values.schema.json"
	configDir   = "internal/config"
	beginMarker = "# --- BEGIN GENERATED config (hack/update-docs.sh; edit internal/config instead) ---"
	endMarker   = "# --- END GENERATED config ---"
)

// durationPattern matches what time.ParseDuration accepts, without a sign.
const durationPattern = `^(0|([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+)$`

// leafTypes are the package's types that marshal themselves as scalars.
var leafTypes = map[string]leaf{
	"Duration": {label: "duration", schema: map[string]any{"type": "string", "pattern": durationPattern}},
}

// externalTypes are the types from other packages that fields use.
var externalTypes = map[string]leaf{
	"intstr.IntOrString": {label: "integer or string", schema: map[string]any{"type": []any{"integer", "string"}}},
	"time.Duration":      {label: "integer (nanoseconds)", schema: map[string]any{"type": "integer"}},
}

// enums names, by field path, the prefix of the package's string constants
// that list the field's allowed values.
var enums = map[string]string{
	"releaseStrategy":            "Strategy",
	"fencing.classes[].provider": "Provider",
	"fencing.classes[].action":   "Action",
}

// chartOverrides are values the chart sets differently from the binary's
// defaults, with the reason.
var chartOverrides = map[string]struct{ value, comment string }{
	"leaderElection.namespace": {`""`, `Empty means the chart's namespace: namespace.name, or the release's.`},
}

// Fields the chart sets itself and does not take from values.
var chartFixed = map[string]bool{"apiVersion": true, "kind": true}

type leaf struct {
	label  string
	schema map[string]any
}

type row struct {
	name, path, typ, def, doc string
}

type section struct {
	path, typeName, doc string
	rows                []row
}

// vnode is a field as a YAML file writes it, in the order of the Go type.
type vnode struct {
	name, doc string
	// value is the default, as JSON (which is YAML too).
	value string
	// chart is what the chart's values.yaml says instead, when set.
	chart string
	// fixed fields are set by the chart itself, not taken from values.
	fixed    bool
	children []*vnode // set for nested objects
}

type gen struct {
	types    map[string]*ast.TypeSpec
	typeDocs map[string]string
	methods  map[string]map[string]bool
	consts   []constant
	sections []*section
}

type constant struct{ name, value string }

func main() {
	root := flag.String("root", ".", "repository root")
	verify := flag.Bool("verify", false, "check that the generated files are up to date; write nothing")
	flag.Parse()
	if err := run(*root, *verify); err != nil {
		fmt.Fprintln(os.Stderr, "gen-config-doc:", err)
		os.Exit(1)
	}
}

func run(root string, verify bool) error {
	g, err := load(filepath.Join(root, configDir))
	if err != nil {
		return err
	}
	spec, ok := g.types[rootType]
	if !ok {
		return fmt.Errorf("no type %s in %s", rootType, configDir)
	}
	st, ok := spec.Type.(*ast.StructType)
	if !ok {
		return fmt.Errorf("%s is not a struct", rootType)
	}
	schema, vroot, err := g.walkStruct(rootType, st, "")
	if err != nil {
		return err
	}

	outputs := map[string][]byte{}
	outputs[docFile] = g.markdown(vroot)

	valuesPath := filepath.Join(root, valuesFile)
	values, err := os.ReadFile(valuesPath)
	if err != nil {
		return err
	}
	if outputs[valuesFile], err = replaceBlock(values, valuesBlock(vroot)); err != nil {
		return fmt.Errorf("%s: %w", valuesFile, err)
	}

	schemaPath := filepath.Join(root, schemaFile)
	sb, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	if outputs[schemaFile], err = replaceSchema(sb, schema); err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}

	names := make([]string, 0, len(outputs))
	for n := range outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var stale []string
	for _, n := range names {
		p := filepath.Join(root, n)
		old, _ := os.ReadFile(p)
		if bytes.Equal(old, outputs[n]) {
			continue
		}
		if verify {
			stale = append(stale, n)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, outputs[n], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", n)
	}
	if len(stale) > 0 {
		return fmt.Errorf("out of date with %s: %s; run hack/update-docs.sh", configDir, strings.Join(stale, ", "))
	}
	return nil
}

// load parses the package's non-test files and indexes its types, methods
// and string constants.
func load(dir string) (*gen, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	g := &gen{types: map[string]*ast.TypeSpec{}, typeDocs: map[string]string{}, methods: map[string]map[string]bool{}}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				g.indexGenDecl(d)
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) == 0 {
					continue
				}
				t := d.Recv.List[0].Type
				if s, ok := t.(*ast.StarExpr); ok {
					t = s.X
				}
				if id, ok := t.(*ast.Ident); ok {
					if g.methods[id.Name] == nil {
						g.methods[id.Name] = map[string]bool{}
					}
					g.methods[id.Name][d.Name.Name] = true
				}
			}
		}
	}
	if len(g.types) == 0 {
		return nil, fmt.Errorf("no Go types found in %s", dir)
	}
	return g, nil
}

func (g *gen) indexGenDecl(d *ast.GenDecl) {
	switch d.Tok {
	case token.TYPE:
		for _, s := range d.Specs {
			ts := s.(*ast.TypeSpec)
			g.types[ts.Name.Name] = ts
			doc := ts.Doc
			if doc == nil && len(d.Specs) == 1 {
				doc = d.Doc
			}
			g.typeDocs[ts.Name.Name] = cleanDoc(doc)
		}
	case token.CONST:
		for _, s := range d.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil {
						g.consts = append(g.consts, constant{n.Name, v})
					}
				}
			}
		}
	}
}

// walkStruct describes one struct: it adds its section to the reference and
// returns its schema and its values.yaml node.
func (g *gen) walkStruct(typeName string, st *ast.StructType, path string) (map[string]any, *vnode, error) {
	sec := &section{path: path, typeName: typeName, doc: g.typeDocs[typeName]}
	g.sections = append(g.sections, sec)
	props := map[string]any{}
	vn := &vnode{}

	type fieldInfo struct {
		goName, jsonName string
		omitempty        bool
		expr             ast.Expr
		doc              string
	}
	var fields []fieldInfo
	goToJSON := map[string]string{}
	for _, f := range st.Fields.List {
		name, omitempty, skip := jsonTag(f)
		if skip {
			continue
		}
		if len(f.Names) == 0 {
			return nil, nil, fmt.Errorf("%s: embedded fields are not supported; give the field a name", typeName)
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			jn := name
			if jn == "" {
				jn = n.Name
			}
			doc := cleanDoc(f.Doc)
			if doc == "" {
				doc = cleanDoc(f.Comment)
			}
			fields = append(fields, fieldInfo{n.Name, jn, omitempty, f.Type, doc})
			goToJSON[n.Name] = jn
		}
	}
	// A field without a comment of its own is often described in a
	// neighbour's ("MetricsAddr serves /metrics; HealthAddr serves ...").
	for i := range fields {
		if fields[i].doc != "" {
			continue
		}
		for _, o := range fields {
			if o.doc != "" && regexp.MustCompile(`\b`+o.goName+`\b`).MatchString(o.doc) &&
				regexp.MustCompile(`\b`+fields[i].goName+`\b`).MatchString(o.doc) {
				fields[i].doc = o.doc
				break
			}
		}
	}
	for _, f := range fields {
		p := join(path, f.jsonName)
		doc := jsonNames(f.doc, goToJSON)
		if doc == "" {
			doc = g.elemDoc(f.expr)
		}
		sch, label, child, err := g.schemaFor(f.expr, p, f.omitempty)
		if err != nil {
			return nil, nil, err
		}
		if doc != "" {
			sch["description"] = plain(doc)
		}
		def, err := defaultAt(p)
		if err != nil {
			return nil, nil, err
		}
		sec.rows = append(sec.rows, row{name: f.jsonName, path: p, typ: label, def: def, doc: doc})
		v := &vnode{name: f.jsonName, doc: plain(doc), fixed: path == "" && chartFixed[f.jsonName]}
		if !v.fixed {
			props[f.jsonName] = sch
		}
		if child != nil {
			v.children = child.children
		} else {
			v.value, err = valuesDefault(p)
			if err != nil {
				return nil, nil, err
			}
			if o, ok := chartOverrides[p]; ok {
				v.chart = o.value
				v.doc = strings.TrimSpace(v.doc + " " + o.comment)
			}
		}
		vn.children = append(vn.children, v)
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}, vn, nil
}

// schemaFor describes a field's type: its schema, its label in the
// reference, and, for a nested struct (not behind a pointer, list or map),
// its values.yaml node.
func (g *gen) schemaFor(e ast.Expr, path string, omitempty bool) (map[string]any, string, *vnode, error) {
	switch t := e.(type) {
	case *ast.Ident:
		switch t.Name {
		case "string":
			s := map[string]any{"type": "string"}
			if prefix, ok := enums[path]; ok {
				var vals []any
				if omitempty {
					vals = append(vals, "")
				}
				for _, c := range g.consts {
					if strings.HasPrefix(c.name, prefix) && len(c.name) > len(prefix) {
						vals = append(vals, c.value)
					}
				}
				if len(vals) == 0 || (omitempty && len(vals) == 1) {
					return nil, "", nil, fmt.Errorf("%s: no string constants named %s* for its allowed values (update the enums table)", path, prefix)
				}
				s["enum"] = vals
				return s, "string, one of " + enumList(vals), nil, nil
			}
			return s, "string", nil, nil
		case "bool":
			return map[string]any{"type": "boolean"}, "boolean", nil, nil
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return map[string]any{"type": "integer"}, "integer", nil, nil
		case "float32", "float64":
			return map[string]any{"type": "number"}, "number", nil, nil
		}
		if l, ok := leafTypes[t.Name]; ok {
			return clone(l.schema), l.label, nil, nil
		}
		spec, ok := g.types[t.Name]
		if !ok {
			return nil, "", nil, fmt.Errorf("%s: unknown type %s", path, t.Name)
		}
		if g.methods[t.Name]["UnmarshalJSON"] {
			return nil, "", nil, fmt.Errorf("%s: type %s decodes itself; add it to leafTypes with its schema", path, t.Name)
		}
		if st, ok := spec.Type.(*ast.StructType); ok {
			s, vn, err := g.walkStruct(t.Name, st, path)
			return s, fmt.Sprintf("[%s](#%s)", t.Name, anchor(path)), vn, err
		}
		s, label, _, err := g.schemaFor(spec.Type, path, omitempty)
		return s, label, nil, err
	case *ast.SelectorExpr:
		name := exprString(t)
		l, ok := externalTypes[name]
		if !ok {
			return nil, "", nil, fmt.Errorf("%s: type %s from another package is not described; add it to externalTypes", path, name)
		}
		return clone(l.schema), l.label, nil, nil
	case *ast.StarExpr:
		s, label, _, err := g.schemaFor(t.X, path, omitempty)
		if err != nil {
			return nil, "", nil, err
		}
		return nullable(s), label + " (optional)", nil, nil
	case *ast.ArrayType:
		if t.Len != nil {
			return nil, "", nil, fmt.Errorf("%s: arrays are not supported", path)
		}
		s, label, _, err := g.schemaFor(t.Elt, path+"[]", false)
		if err != nil {
			return nil, "", nil, err
		}
		delete(s, "description")
		return map[string]any{"type": []any{"array", "null"}, "items": s}, "list of " + label, nil, nil
	case *ast.MapType:
		if id, ok := t.Key.(*ast.Ident); !ok || id.Name != "string" {
			return nil, "", nil, fmt.Errorf("%s: only maps with string keys are supported", path)
		}
		s, label, _, err := g.schemaFor(t.Value, path+".<name>", false)
		if err != nil {
			return nil, "", nil, err
		}
		delete(s, "description")
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": s}, "map of name to " + label, nil, nil
	case *ast.StructType:
		s, vn, err := g.walkStruct("", t, path)
		return s, fmt.Sprintf("[object](#%s)", anchor(path)), vn, err
	}
	return nil, "", nil, fmt.Errorf("%s: unsupported type %s", path, exprString(e))
}

// elemDoc describes a field without a comment by the comment of its type
// (or of its elements' type).
func (g *gen) elemDoc(e ast.Expr) string {
	prefix := ""
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
			continue
		case *ast.ArrayType:
			e, prefix = t.Elt, "A list; each item: "
			continue
		case *ast.MapType:
			e, prefix = t.Value, "A map from a name to: "
			continue
		case *ast.Ident:
			if d := g.typeDocs[t.Name]; d != "" {
				return prefix + d
			}
		}
		return ""
	}
}

// plain drops the Markdown code marks of a comment.
func plain(doc string) string { return strings.ReplaceAll(doc, "`", "") }

func nullable(s map[string]any) map[string]any {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case []any:
		for _, x := range t {
			if x == "null" {
				return s
			}
		}
		s["type"] = append(t, "null")
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
	return s
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func jsonTag(f *ast.Field) (name string, omitempty, skip bool) {
	if f.Tag == nil {
		return "", false, false
	}
	tag, err := strconv.Unquote(f.Tag.Value)
	if err != nil {
		return "", false, false
	}
	v, ok := reflect.StructTag(tag).Lookup("json")
	if !ok {
		return "", false, false
	}
	parts := strings.Split(v, ",")
	if parts[0] == "-" && len(parts) == 1 {
		return "", false, true
	}
	for _, p := range parts[1:] {
		if p == "omitempty" || p == "omitzero" {
			omitempty = true
		}
	}
	return parts[0], omitempty, false
}

func exprString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return exprString(t.X) + "." + t.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(t.X)
	case *ast.ArrayType:
		return "[]" + exprString(t.Elt)
	case *ast.MapType:
		return "map[" + exprString(t.Key) + "]" + exprString(t.Value)
	}
	return fmt.Sprintf("%T", e)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// cleanDoc turns a comment into one paragraph.
func cleanDoc(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}

// jsonNames replaces the Go names of a struct's fields in a comment by their
// JSON names, as a user writes them.
func jsonNames(doc string, goToJSON map[string]string) string {
	if doc == "" {
		return ""
	}
	names := make([]string, 0, len(goToJSON))
	for g := range goToJSON {
		names = append(names, regexp.QuoteMeta(g))
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	re := regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
	return re.ReplaceAllStringFunc(doc, func(s string) string { return "`" + goToJSON[s] + "`" })
}

func enumList(vals []any) string {
	var s []string
	for _, v := range vals {
		if v == "" {
			continue
		}
		s = append(s, fmt.Sprintf("`%v`", v))
	}
	return strings.Join(s, ", ")
}

// anchor is the HTML id of a section.
func anchor(path string) string {
	if path == "" {
		return "top-level-fields"
	}
	a := strings.NewReplacer("[]", "", ".<name>", "-name", ".", "-").Replace(path)
	return strings.ToLower(a)
}

// probe is the value found at a path of a configuration: config.Default(),
// with one empty element added to every list and map on the way, and the
// package's own defaulting applied to it (as for a file that sets those
// elements and nothing else).
func probe(path string) (reflect.Value, bool, error) {
	segs := strings.Split(path, ".")
	// Only the lists and maps on the way are filled in: an optional object
	// (a pointer) stays unset, as in a file that does not mention it.
	last := -1
	for i, s := range segs[:len(segs)-1] {
		if s == "<name>" || strings.HasSuffix(s, "[]") {
			last = i
		}
	}
	var build func(i int) any
	build = func(i int) any {
		if i > last {
			return map[string]any{}
		}
		s := segs[i]
		if s == "<name>" {
			return map[string]any{"example": build(i + 1)}
		}
		if strings.HasSuffix(s, "[]") {
			return map[string]any{strings.TrimSuffix(s, "[]"): []any{build(i + 1)}}
		}
		return map[string]any{s: build(i + 1)}
	}
	c := config.Default()
	if last >= 0 {
		b, err := yaml.Marshal(build(0))
		if err != nil {
			return reflect.Value{}, false, err
		}
		// The empty elements are usually invalid (a fence class needs a
		// name); only a decoding error matters here.
		var fe *config.FieldError
		if err := config.Parse(b, c); err != nil && !errors.As(err, &fe) {
			return reflect.Value{}, false, fmt.Errorf("probing the default of %s: %w", path, err)
		}
	}
	v := reflect.ValueOf(c).Elem()
	for _, s := range segs {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false, nil
			}
			v = v.Elem()
		}
		switch {
		case s == "<name>":
			if v.Kind() != reflect.Map || v.Len() == 0 {
				return reflect.Value{}, false, nil
			}
			v = v.MapIndex(reflect.ValueOf("example"))
			if !v.IsValid() {
				return reflect.Value{}, false, nil
			}
		case strings.HasSuffix(s, "[]"):
			f, ok := fieldByJSON(v, strings.TrimSuffix(s, "[]"))
			if !ok || f.Kind() != reflect.Slice || f.Len() == 0 {
				return reflect.Value{}, false, nil
			}
			v = f.Index(0)
		default:
			f, ok := fieldByJSON(v, s)
			if !ok {
				return reflect.Value{}, false, fmt.Errorf("%s: no field %q in %s (is the package built from the same source?)", path, s, v.Type())
			}
			v = f
		}
	}
	return v, true, nil
}

func fieldByJSON(v reflect.Value, name string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// defaultAt is the default of a field as the reference shows it.
func defaultAt(path string) (string, error) {
	v, ok, err := probe(path)
	if err != nil || !ok {
		return "", err
	}
	if isObject(v) {
		return "", nil
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return "", err
	}
	if string(b) == "null" || (strings.ContainsAny(path, "[<") && v.IsZero()) {
		// Nothing, or the zero value of a field of a list item or map
		// value: the field has no default.
		return "", nil
	}
	return "`" + string(b) + "`", nil
}

// valuesDefault is the default of a field as values.yaml writes it.
func valuesDefault(path string) (string, error) {
	v, ok, err := probe(path)
	if err != nil {
		return "", err
	}
	if !ok {
		return "null", nil
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return "", err
	}
	switch string(b) {
	case "null":
		switch v.Kind() {
		case reflect.Slice:
			return "[]", nil
		case reflect.Map:
			return "{}", nil
		}
	}
	return string(b), nil
}

// isObject is true for a struct shown as its own section (not a type that
// marshals itself).
func isObject(v reflect.Value) bool {
	if v.Kind() != reflect.Struct {
		return false
	}
	_, ok := v.Interface().(json.Marshaler)
	if !ok && v.CanAddr() {
		_, ok = v.Addr().Interface().(json.Marshaler)
	}
	return !ok
}

func (g *gen) markdown(root *vnode) []byte {
	var b bytes.Buffer
	b.WriteString(docHeader)
	for _, s := range g.sections {
		title := "Top-level fields"
		if s.path != "" {
			title = "`" + s.path + "`"
		}
		if s.typeName != "" && s.path != "" {
			title += " (" + s.typeName + ")"
		}
		fmt.Fprintf(&b, "\n<a id=\"%s\"></a>\n\n## %s\n\n", anchor(s.path), title)
		if s.doc != "" && s.path != "" {
			b.WriteString(wrap(s.doc, 80, "") + "\n\n")
		}
		b.WriteString("| field | type | default | description |\n|---|---|---|---|\n")
		for _, r := range s.rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.name, cell(r.typ), cell(r.def), cell(r.doc))
		}
	}
	b.WriteString("\n## The defaults as a file\n\nWhat the controller uses when its file (or a field) is left out:\n\n```yaml\n")
	b.WriteString(yamlTree(root, false, false))
	b.WriteString("```\n")
	return b.Bytes()
}

func cell(s string) string {
	if s == "" {
		return ""
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

func wrap(s string, width int, prefix string) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(prefix)+len(line)+1+len(w) > width {
			lines = append(lines, prefix+line)
			line = ""
		}
		if line == "" {
			line = w
		} else {
			line += " " + w
		}
	}
	if line != "" {
		lines = append(lines, prefix+line)
	}
	return strings.Join(lines, "\n")
}

// valuesBlock writes the config block of values.yaml.
func valuesBlock(root *vnode) string {
	var b strings.Builder
	b.WriteString(wrap("config is the controller's configuration file: the chart writes it, with apiVersion and kind, to the ConfigMap liberator-config (key config.yaml). Every field is described in docs/configuration.md. The controller checks the file when it starts and exits with a message naming the field when a value is wrong.", 80, "# ") + "\n")
	b.WriteString("config:\n")
	b.WriteString(yamlTree(root, true, true))
	return b.String()
}

// yamlTree writes the fields as YAML: for the chart (values, comments,
// indented under config:) or as the controller's defaults.
func yamlTree(root *vnode, chart, comments bool) string {
	var b strings.Builder
	var walk func(n *vnode, indent string)
	walk = func(n *vnode, indent string) {
		lastDoc := ""
		for _, c := range n.children {
			if chart && c.fixed {
				continue
			}
			if comments && c.doc != "" && c.doc != lastDoc {
				b.WriteString(wrap(c.doc, 80, indent+"# ") + "\n")
			}
			lastDoc = c.doc
			if c.children != nil {
				b.WriteString(indent + c.name + ":\n")
				walk(c, indent+"  ")
				continue
			}
			v := c.value
			if chart && c.chart != "" {
				v = c.chart
			}
			b.WriteString(indent + c.name + ": " + v + "\n")
		}
	}
	indent := ""
	if chart {
		indent = "  "
	}
	walk(root, indent)
	return b.String()
}

func replaceBlock(file []byte, block string) ([]byte, error) {
	s := string(file)
	i := strings.Index(s, beginMarker)
	j := strings.Index(s, endMarker)
	if i < 0 || j < i {
		return nil, fmt.Errorf("markers %q and %q not found", beginMarker, endMarker)
	}
	return []byte(s[:i+len(beginMarker)] + "\n" + block + s[j:]), nil
}

func replaceSchema(file []byte, cfg map[string]any) ([]byte, error) {
	var s map[string]any
	if err := json.Unmarshal(file, &s); err != nil {
		return nil, err
	}
	props, ok := s["properties"].(map[string]any)
	if !ok {
		return nil, errors.New("no top-level properties")
	}
	cfg["description"] = "The controller's configuration file (ConfigMap liberator-config); see docs/configuration.md. Generated from internal/config by hack/update-docs.sh."
	props["config"] = cfg
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const docHeader = `<!-- Generated by hack/gen-config-doc from the Go types in internal/config.
     Do not edit: change the types and their comments, then run hack/update-docs.sh. -->

# Configuration reference

The controller reads one file, a ` + "`ControllerConfig`" + `:

- installed with kustomize, it is ` + "`config/manager/config.yaml`" + `, shipped as the
  ConfigMap ` + "`tkr-system/liberator-config`" + ` (key ` + "`config.yaml`" + `) and mounted at
  ` + "`/etc/liberator/config.yaml`" + `;
- installed with Helm, the same fields sit under ` + "`config:`" + ` in the chart's values
  (` + "`charts/liberator/values.yaml`" + `), and the chart writes the ConfigMap.

A field left out takes its default. The file is read strictly, so that it
cannot be misread:

- it starts with ` + "`apiVersion: config.liberator.dev/v1alpha1`" + ` and ` + "`kind: ControllerConfig`" + `;
- keys are the field names below, exactly: ` + "`MaxConcurrent:`" + ` is an unknown field
  (the message suggests ` + "`maxConcurrent`" + `), as is any misspelt key;
- each value has its field's type: a duration is a string such as ` + "`\"30s\"`" + `, a
  boolean ` + "`true`" + ` or ` + "`false`" + ` (not ` + "`yes`" + `), a count a whole number; a key
  without a value is an error (leave the key out for the default);
- the file holds one YAML document: a second one (after ` + "`---`" + `) is refused, not
  ignored; an empty file, one of comments only, ` + "`null`" + ` or ` + "`{}`" + ` is refused (run
  without ` + "`--config`" + ` for the defaults);
- names are checked where they name Kubernetes objects or appear in them:
  fence class names are DNS labels, node names, the Lease's name and Secret
  names DNS subdomains; ` + "`metricsAddr`" + ` and ` + "`healthAddr`" + ` are ` + "`host:port`" + `, and differ.

The controller checks the whole file when it starts and, when something is
wrong, exits naming the line, the field, the bad value and what is expected:

` + "```" + `
liberator: config /etc/liberator/config.yaml: line 14: fencing.classes[0].provider: invalid value "ipmi": must be one of fence-agent, redfish, agent, wait, none
` + "```" + `

Several problems are counted and listed one per line, at most ten, then how
many more there are. A value that cannot be read is reported once: the checks
that depend on it (a class's fields when its provider is unknown, the order
of the leader election durations when one of them is not a duration) are not
reported as well.

Check a file, or the ConfigMap manifest holding it, before applying it,
without a cluster; both exit with status 0 when the file is valid and 1 when
it is not (see ` + "`docs/cli.md`" + `):

` + "```" + `
liberator config validate config.yaml        # or a ConfigMap manifest; several files at once
liberator controller --config config.yaml --check   # the file and the controller's flags
` + "```" + `

The pod then fails to start (CrashLoopBackOff) and ` + "`kubectl -n tkr-system logs deploy/liberator-controller`" + `
shows that line. A running controller picks up a change of the file by
itself, and refuses a bad one while it keeps running: see
[Changing the configuration live](#changing-the-configuration-live). Some
fields can also be overridden by flags of ` + "`liberator controller`" + ` (see
` + "`liberator controller --help`" + `); a flag that is set wins over the file, at
start and at every reload.

Durations are Go duration strings: ` + "`\"40s\"`, `\"1m30s\"`, `\"10m\"`" + `.

## Changing the configuration live

The controller reads its file again every 2 seconds (` + "`--config-reload-interval`" + `;
` + "`0`" + ` turns this off) and compares the content by its hash. When it changed, the
new file is checked exactly as at start (the file, the flags that were set
over it, the validation above), and then:

- **valid**: it is applied at once, between two decisions (each decision,
  scan and fence check round reads one configuration whole, never a mix). The
  log has one line, ` + "`configuration reloaded`" + `, naming the fields that changed
  with their old and new values (a fence class by its name only, never its
  values);
- **invalid**: it is refused and the configuration in force is kept; the
  controller runs on. The log has one error line,
  ` + "`configuration change refused; the running configuration is kept`" + `, with the
  message ` + "`liberator config validate`" + ` prints (several problems on one line);
- **a field that needs a restart changed**: the whole change is refused, with
  one line naming the field:

  ` + "```" + `
  leaderElection.leaseDuration: changed from 15s to 20s, which needs a restart; the change was not applied
  ` + "```" + `

  These fields are wired when the controller starts: ` + "`leaderElection.*`" + `,
  ` + "`metricsAddr`" + `, ` + "`healthAddr`" + `, ` + "`apiGuard.failureThreshold`" + `,
  ` + "`fenceCheckInterval`" + `, and the fence classes with provider ` + "`agent`" + ` (adding
  the first one, or changing the largest ` + "`selfFence.margin`" + ` among them). Change
  them, then ` + "`kubectl -n tkr-system rollout restart deployment/liberator-controller`" + `.

Every other field changes live. What a change does to the incidents already
open:

- a Takeover keeps the fence class and provider it recorded when it opened
  (` + "`spec.fenceClass`" + `, ` + "`spec.fenceProvider`" + `). When a change removes that class, or
  gives it another provider, the incident is held (` + "`Paused`" + `, reason
  ` + "`Unfenceable`" + `): it is never taken as fenced and nothing is released, until a
  configuration has that class with that provider again. A class's other
  fields (address, options, timeout) changed under the same name and provider
  apply from its next fence call. An incident already ` + "`Fenced`" + ` goes on to its
  release: its node was proven off;
- a fence call under way finishes with the configuration it started with;
  ` + "`releaseStrategy`" + ` applies to incidents opened after the change (each records
  its own in ` + "`spec.strategy`" + `);
- ` + "`dryRun: true`" + ` holds every incident not yet released (` + "`Paused`" + `, reason
  ` + "`DryRun`" + `, nothing fenced or released from then on); back to ` + "`false`" + `, they go on;
- a shorter ` + "`unhealthyAfter`" + ` takes a node as failed once it has been silent, as
  this controller watched it on its own clock, for the new window, never
  earlier; a longer one makes the nodes not yet detected wait longer.

**How long a change takes.** Edit the ConfigMap (` + "`kubectl -n tkr-system edit configmap liberator-config`" + `,
or apply ` + "`config/manager/config.yaml`" + `). The kubelet writes the new content into
the pod's volume at its next sync of the pod: up to its sync period (` + "`syncFrequency`" + `,
1 minute by default) plus its ConfigMap cache delay; the controller sees it
within 2 seconds after that. Both replicas reload, the standby too. This works
because the ConfigMap is mounted as a directory (` + "`/etc/liberator`" + `, as in
` + "`config/manager/deployment.yaml`" + ` and the chart): a file mounted with ` + "`subPath`" + ` is
never updated, and the controller would keep the file it started with. With
Helm, ` + "`helm upgrade`" + ` with changed ` + "`config:`" + ` values restarts the controller pods
(the chart's ` + "`checksum/config`" + ` annotation), so every field, live or not, takes
effect that way.

**How to see that it was applied.** The log line above, and the metrics:

| metric | what it says |
|---|---|
| ` + "`liberator_config_info{hash}`" + ` | 1, labelled with the first 12 hex digits of the SHA-256 of the file content in force |
| ` + "`liberator_config_last_reload_successful`" + ` | 0 when the last change seen was refused (the running configuration is older than the file), else 1 |
| ` + "`liberator_config_last_reload_success_timestamp_seconds`" + ` | when the configuration in force was loaded |
| ` + "`liberator_config_reloads_total{result}`" + ` | changes seen, ` + "`applied`" + ` or ` + "`refused`" + ` |

The hash of the ConfigMap's content, to compare with ` + "`liberator_config_info`" + `:

` + "```" + `
kubectl -n tkr-system get configmap liberator-config -o jsonpath='{.data.config\.yaml}' | sha256sum | cut -c1-12
` + "```" + `
`
