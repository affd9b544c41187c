// Command monitoring writes the generated monitoring files of liberator:
// the Grafana dashboard (config/prometheus/dashboard.json, built with the
// Grafana Foundation SDK) and the chart's copies of the dashboard and of the
// alert rules (charts/liberator/files). Run it from anywhere:
//
//	go -C hack/monitoring run .
//
// Its tests (make verify-monitoring) fail when the committed files differ
// from what it writes, run the rules through promtool, and check every
// PromQL expression against the metrics the controller exports.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// generated returns the generated files by path from the repository root.
func generated(root string) (map[string][]byte, error) {
	d, err := dashboardJSON()
	if err != nil {
		return nil, fmt.Errorf("build the dashboard: %w", err)
	}
	rules, err := os.ReadFile(filepath.Join(root, rulesPath))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		dashboardPath:                                d,
		"charts/liberator/files/dashboard.json":      d,
		"charts/liberator/files/prometheusrule.yaml": rules,
	}, nil
}

const (
	dashboardPath = "config/prometheus/dashboard.json"
	rulesPath     = "config/prometheus/prometheusrule.yaml"
)

// repoRoot is the repository holding this module (hack/monitoring).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "hack", "monitoring", "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no repository with hack/monitoring above %s", wd)
		}
	}
}

func main() {
	root, err := repoRoot()
	if err == nil {
		err = write(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitoring:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	files, err := generated(root)
	if err != nil {
		return err
	}
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", p)
	}
	return nil
}
