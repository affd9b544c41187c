package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Load reads and validates a config file. An empty path gives the defaults;
// a file given must hold a whole configuration (an empty file is refused).
// A refusal is an *Error naming the file.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, c.Validate()
	}
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: cannot read %s: %w", path, err)
	}
	if err := Parse(b, c); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = path
			return nil, e
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// readFile reads at most one byte more than MaxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// Parse decodes b, one YAML document, over c (which holds the defaults),
// and validates the result. Keys must be field names exactly; a refusal is
// an *Error listing every problem once: a field whose value could not be
// read is not also reported by the checks that depend on it.
func Parse(b []byte, c *Config) error {
	d, lines := decodeFile(b, c)
	if lines != nil {
		c.applyClassDefaults()
		for _, err := range c.check() {
			if fe, ok := err.(*FieldError); ok && d.related(fe) {
				continue
			}
			d.err.add(err)
		}
	}
	d.err.sortByLine()
	return d.err.orNil()
}

// related reports whether a validation problem concerns a field whose value
// was refused: the field itself, a field within it or holding it, or a rule
// naming it.
func (d *decoder) related(fe *FieldError) bool {
	if d.hasFailed(fe.Field) || d.holdsFailed[fe.Field] {
		return true
	}
	for _, w := range strings.FieldsFunc(fe.Want, notPathRune) {
		if d.failed[w] {
			return true
		}
	}
	return false
}

// notPathRune reports whether r cannot be part of a field path.
func notPathRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".[]_-", r))
}
