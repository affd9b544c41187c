package config

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Load reads and validates a config file. An empty path gives the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, c.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: cannot read %s: %w", path, err)
	}
	if err := Parse(b, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes b over c (which holds the defaults), rejecting unknown
// fields, and validates the result.
func Parse(b []byte, c *Config) error {
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return fmt.Errorf("%s (fix the YAML; see docs/configuration.md for the fields)", cleanYAMLError(err))
	}
	c.applyClassDefaults()
	return c.Validate()
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	return strings.ReplaceAll(s, "json: unknown field", "unknown field")
}
