package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	head := "apiVersion: config.liberator.dev/v1alpha1\nkind: ControllerConfig\n"
	if r := Default().Retention; r.PerNode != 5 || r.Total != 100 || r.MaxAge.Duration != 0 {
		t.Errorf("default retention %+v, want perNode 5, total 100, no maxAge", r)
	}
	c := Default()
	if err := Parse([]byte(head+"retention: {perNode: 1, total: 3, maxAge: 720h}\n"), c); err != nil {
		t.Fatal(err)
	}
	if r := c.Retention; r.PerNode != 1 || r.Total != 3 || r.MaxAge.Duration != 720*time.Hour {
		t.Errorf("retention %+v", r)
	}
	c = Default()
	if err := Parse([]byte(head+"retention: {total: 7}\n"), c); err != nil || c.Retention.PerNode != 5 || c.Retention.Total != 7 {
		t.Errorf("a partial retention section: %+v, %v; want perNode's default kept", c.Retention, err)
	}
	for yaml, want := range map[string]string{
		"retention: {perNode: 0}\n":   `retention.perNode: invalid value "0": must be at least 1`,
		"retention: {total: -1}\n":    `retention.total: invalid value "-1": must be at least 1`,
		"retention: {maxAge: -1h}\n":  `retention.maxAge: invalid value "-1h0m0s": must be a duration such as "720h", or "0s"`,
		"retention: {maxAge: week}\n": `want a duration such as "30s"`,
	} {
		err := Parse([]byte(head+yaml), Default())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", strings.TrimSpace(yaml), err, want)
		}
	}
}
