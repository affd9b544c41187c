package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// A mutation of a valid file, and what must become of it: refused with a
// message containing want (in order), as one problem when single, or
// either accepted or refused (want empty).
type mutation struct {
	kind, text string
	want       []string
	single     bool
}

var (
	// blockKey matches a line "  key: value" or "  - key: value" of a
	// block mapping, whose key is a field name.
	blockKey = regexp.MustCompile(`^(\s*(?:-\s+)?)([a-z][A-Za-z0-9]*):(\s+(.*))?$`)
	duration = regexp.MustCompile(`^[0-9]+(ms|s|m|h)$`)
	integer  = regexp.MustCompile(`^[0-9]+$`)
)

// mutations derives broken files from a valid one: keys in another case,
// values of another type or none, a second document, truncations.
func mutations(text string) []mutation {
	lines := strings.Split(text, "\n")
	var ms []mutation
	with := func(i int, l string) string {
		c := append([]string(nil), lines...)
		c[i] = l
		return strings.Join(c, "\n")
	}
	for i, l := range lines {
		m := blockKey.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent, key, value := m[1], m[2], strings.TrimSpace(m[4])
		if c := strings.Index(value, " #"); c >= 0 {
			value = strings.TrimSpace(value[:c])
		}
		at := fmt.Sprintf("line %d: ", i+1)
		upper := strings.ToUpper(key[:1]) + key[1:]
		ms = append(ms, mutation{"key case", with(i, indent+upper+":"+strings.TrimPrefix(l, indent+key+":")),
			[]string{at, fmt.Sprintf("unknown field %q (did you mean %q?)", upper, key)}, true})
		if lower := strings.ToLower(key); lower != key {
			ms = append(ms, mutation{"key case", with(i, indent+lower+":"+strings.TrimPrefix(l, indent+key+":")),
				[]string{at, fmt.Sprintf("unknown field %q (did you mean %q?)", lower, key)}, true})
		}
		if value == "" || strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{") || strings.HasPrefix(value, "|") {
			continue
		}
		set := func(kind, v string, want ...string) {
			ms = append(ms, mutation{kind, with(i, indent+key+": "+v), append([]string{at, key + ": "}, want...), true})
		}
		set("list for a value", "[x]", "want a single value, got a list")
		set("mapping for a value", "{x: 1}", "want a single value, got a mapping")
		set("no value", "", "no value")
		switch {
		case value == "true" || value == "false":
			set("word for a bool", "yes", `want true or false, got "yes"`)
		case duration.MatchString(value):
			set("number for a duration", "30", `want a duration string such as "30s", got 30`)
		case integer.MatchString(value) && key != "maxUnhealthy":
			set("fraction for a number", "2.5", "want a whole number, got 2.5")
		}
	}
	n := strings.Count(text, "\n")
	ms = append(ms,
		mutation{"second document", text + "---\n" + text, []string{fmt.Sprintf("line %d: a second YAML document", n+1)}, true},
		mutation{"empty second document", text + "---\n", []string{"a second YAML document"}, true},
	)
	for k := range lines {
		ms = append(ms, mutation{kind: "truncated at a line", text: strings.Join(lines[:k], "\n")})
	}
	for k := 1; k < len(text); k += 17 {
		ms = append(ms, mutation{kind: "truncated in a line", text: text[:k]})
	}
	return ms
}

// A few hundred mutations of the valid files: each is refused with the
// problem named once, at its line, or (a truncation) accepted when what is
// left is a whole configuration.
func TestMutatedFiles(t *testing.T) {
	kinds := map[string][2]int{} // kind → accepted, refused
	total := 0
	files := seedFiles(t)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, m := range mutations(string(files[name])) {
			total++
			e := checkLoad(t, []byte(m.text))
			k := kinds[m.kind]
			if e == nil {
				k[0]++
				kinds[m.kind] = k
				if len(m.want) > 0 {
					t.Errorf("%s, %s: accepted:\n%s", name, m.kind, m.text)
				}
				continue
			}
			k[1]++
			kinds[m.kind] = k
			msg := e.Error()
			rest := msg
			for _, w := range m.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("%s, %s: message\n%s\nwant it to contain (in order) %q; file:\n%s", name, m.kind, msg, w, m.text)
					break
				}
				rest = rest[i+len(w):]
			}
			if m.single && e.count() != 1 {
				t.Errorf("%s, %s: %d problems, want 1:\n%s\nfile:\n%s", name, m.kind, e.count(), msg, m.text)
			}
		}
	}
	for kind, k := range kinds {
		t.Logf("%-22s accepted %3d, refused %3d", kind, k[0], k[1])
	}
	t.Logf("%d mutated files", total)
	if total < 300 {
		t.Fatalf("only %d mutated files", total)
	}
	if k := kinds["truncated in a line"]; k[1] == 0 {
		t.Fatal("no truncation was refused")
	}
}
