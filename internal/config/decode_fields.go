package config

import (
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// decodeScalar reads a string, a boolean or a number. A string field takes
// any scalar as written (lanplus: 1 is the string "1"); a boolean takes
// only true or false, a number only a number.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string, null bool) {
	if null {
		d.fail(n, path, "no value: write one, or leave the field out for its default")
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, got %s", describe(n))
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "want true or false, got %s", got(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(n, path, "want a whole number, got %s", got(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			d.fail(n, path, "want a whole number from 0, got %s", got(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n, path, "want a number, got %s", got(n))
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "cannot read a value of type %s", v.Type())
	}
}

// jsonFields maps the JSON names of t's fields to their indexes.
func jsonFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = i
	}
	return m
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// suggest returns the field name meant by a key that is none: the same
// name in another case, or the closest within a few typing mistakes.
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 0
	for name := range fields {
		if strings.EqualFold(name, key) {
			return name
		}
		dist := editDistance(strings.ToLower(key), strings.ToLower(name))
		if dist <= max(1, len(name)/5) && (best == "" || dist < bestD || dist == bestD && name < best) {
			best, bestD = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes); keys longer
// than a field name could be count as far.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
