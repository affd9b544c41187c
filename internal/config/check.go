package config

import (
	"bytes"
	"errors"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// ConfigMapKey is the key of the controller's ConfigMap that holds the file.
const ConfigMapKey = "config.yaml"

// Check validates the file at path without running anything: a
// ControllerConfig, or a ConfigMap manifest holding one under
// data.config.yaml (the lines of whose problems are the manifest's when the
// key's value is a literal block, "|"). A refusal is an *Error naming the
// file.
func Check(path string) error {
	b, err := readFile(path)
	if err != nil {
		return fmt.Errorf("config: cannot read %s: %w", path, err)
	}
	name, text, offset, ok, err := configMapData(b)
	if err != nil {
		return fmt.Errorf("config %s (%s): %w", path, name, err)
	}
	if !ok {
		_, err := Load(path)
		return err
	}
	if err := Parse(text, Default()); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = fmt.Sprintf("%s (%s, key %s)", path, name, ConfigMapKey)
			e.LineOffset = offset
			return e
		}
		return err
	}
	return nil
}

// configMapData returns, when b is one ConfigMap manifest, its namespace
// and name, the text under ConfigMapKey and the line before that text's
// first (0 when the value is not a literal block).
func configMapData(b []byte) (name string, text []byte, offset int, ok bool, err error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if dec.Decode(&doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", nil, 0, false, nil
	}
	m := doc.Content[0]
	if v := lookup(m, "kind"); v == nil || v.Value != "ConfigMap" {
		return "", nil, 0, false, nil
	}
	name = "ConfigMap"
	if md := lookup(m, "metadata"); md != nil {
		ns, n := lookup(md, "namespace"), lookup(md, "name")
		switch {
		case ns != nil && n != nil:
			name += " " + cut(ns.Value, maxValueLen) + "/" + cut(n.Value, maxValueLen)
		case n != nil:
			name += " " + cut(n.Value, maxValueLen)
		}
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return name, nil, 0, false, fmt.Errorf("a second YAML document: give the ConfigMap alone")
	}
	data := lookup(m, "data")
	v := (*yaml.Node)(nil)
	if data != nil {
		v = lookup(data, ConfigMapKey)
	}
	if v == nil || v.Kind != yaml.ScalarNode {
		return name, nil, 0, false, fmt.Errorf("no key %s under data: the controller reads its file from there", ConfigMapKey)
	}
	if v.Style&yaml.LiteralStyle != 0 {
		offset = v.Line
	}
	return name, []byte(v.Value), offset, true, nil
}

// lookup returns the value of key in the mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
