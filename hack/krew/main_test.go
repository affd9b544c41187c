package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

// release lays out what `make krew` builds: DIR/OS_ARCH/liberator for
// every platform, and a LICENSE.
func release(t *testing.T) (dir, license string) {
	t.Helper()
	dir = t.TempDir()
	for _, pl := range Platforms {
		d := filepath.Join(dir, pl.OS+"_"+pl.Arch)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "liberator"), []byte("#!/bin/sh\necho liberator "+pl.OS+"/"+pl.Arch+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	license = filepath.Join(dir, "LICENSE")
	if err := os.WriteFile(license, []byte("license text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, license
}

func TestPluginVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                 "v1.2.3",
		"v1.2.3-4-gabcdef0":      "v1.2.3-4-gabcdef0",
		"v1.2.3-4-gabcdef-dirty": "v1.2.3-4-gabcdef-dirty",
		"72f6cde":                "v0.0.0-72f6cde",
		"72f6cde-dirty":          "v0.0.0-72f6cde-dirty",
		"dev":                    "v0.0.0-dev",
		"0124080-dirty":          "v0.0.0-0124080-dirty",
	} {
		if got := PluginVersion(in); got != want {
			t.Errorf("PluginVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestManifestValidates generates the manifest and checks it with krew's
// validate-krew-manifest and `kubectl krew install --archive` on every
// platform; an archive that is not the one the manifest names, and a
// manifest krew's validation refuses, must fail the check.
func TestManifestValidates(t *testing.T) {
	dir, license := release(t)
	path, archives, err := Generate(dir, "72f6cde-dirty", "https://example.invalid/releases", license)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p index.Plugin
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	if p.Name != "liberator" || p.Spec.Version != "v0.0.0-72f6cde-dirty" || len(p.Spec.Platforms) != len(Platforms) {
		t.Fatalf("manifest: name %q, version %q, %d platforms\n%s", p.Name, p.Spec.Version, len(p.Spec.Platforms), b)
	}
	for i, pl := range Platforms {
		got := p.Spec.Platforms[i]
		name := ArchiveName("v0.0.0-72f6cde-dirty", pl.OS, pl.Arch)
		if got.URI != "https://example.invalid/releases/v0.0.0-72f6cde-dirty/"+name {
			t.Errorf("%s/%s: uri %s", pl.OS, pl.Arch, got.URI)
		}
		a, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(a)
		if got.Sha256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s/%s: sha256 %s, the archive's is %x", pl.OS, pl.Arch, got.Sha256, sum)
		}
		if got.Selector.MatchLabels["os"] != pl.OS || got.Selector.MatchLabels["arch"] != pl.Arch || got.Bin != "liberator" {
			t.Errorf("%s/%s: selector %v, bin %q", pl.OS, pl.Arch, got.Selector.MatchLabels, got.Bin)
		}
	}
	// The same input gives the same archives (fixed times and owners).
	again := t.TempDir()
	for _, pl := range Platforms {
		d := filepath.Join(again, pl.OS+"_"+pl.Arch)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(dir, pl.OS+"_"+pl.Arch, "liberator"), filepath.Join(d, "liberator")); err != nil {
			t.Fatal(err)
		}
	}
	path2, _, err := Generate(again, "72f6cde-dirty", "https://example.invalid/releases", license)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path2); string(b2) != string(b) {
		t.Errorf("a second generation differs:\n%s\n---\n%s", b, b2)
	}

	if err := Check(path, archives); err != nil {
		t.Fatalf("krew refuses the manifest: %v", err)
	}

	// An archive that is not the one the manifest names.
	bad := filepath.Join(t.TempDir(), "other.tar.gz")
	if err := os.WriteFile(bad, []byte("not the release archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	swapped := map[string]string{}
	for k, v := range archives {
		swapped[k] = v
	}
	swapped["darwin/arm64"] = bad
	err = Check(path, swapped)
	t.Logf("with a wrong archive for darwin/arm64: %v", err)
	if err == nil || !strings.Contains(err.Error(), "darwin/arm64") || !strings.Contains(err.Error(), "checksum does not match") {
		t.Errorf("a wrong archive for darwin/arm64: %v, want krew install to refuse it", err)
	}

	// A manifest krew's validation refuses: a version that is not semantic.
	p.Spec.Version = "72f6cde"
	wrong, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	badPath := filepath.Join(t.TempDir(), "liberator.yaml")
	if err := os.WriteFile(badPath, wrong, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Check(badPath, archives)
	t.Logf("with version 72f6cde: %v", err)
	if err == nil || !strings.Contains(err.Error(), "validate-krew-manifest") || !strings.Contains(err.Error(), "72f6cde") {
		t.Errorf("a manifest with version 72f6cde: %v, want validate-krew-manifest to refuse it", err)
	}
}

// TestCommitOfDigits: an untagged build whose commit is all digits with a
// leading zero (0124080) still gives a version krew's own validation
// takes (SemVer forbids a numeric pre-release identifier with a leading
// zero).
func TestCommitOfDigits(t *testing.T) {
	if got := PluginVersion("0124080"); got != "v0.0.0-g0124080" {
		t.Errorf("PluginVersion(0124080) = %q, want v0.0.0-g0124080", got)
	}
	dir, license := release(t)
	path, archives, err := Generate(dir, "0124080", "https://example.invalid/releases", license)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(path, archives); err != nil {
		t.Errorf("krew refuses the manifest of commit 0124080: %v", err)
	}
}
