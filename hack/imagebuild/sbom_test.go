package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validateCycloneDX validates an SBOM against the CycloneDX 1.6 JSON
// schema (with the SPDX license and JSF signature schemas it refers to),
// as published in the cyclonedx-go module, with a JSON Schema validator.
func validateCycloneDX(t *testing.T, sbom []byte) error {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/CycloneDX/cyclonedx-go: %v", err)
	}
	schemas := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for url, file := range map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		f, err := os.Open(filepath.Join(schemas, file))
		if err != nil {
			t.Fatalf("the CycloneDX schema: %v", err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatalf("compile the CycloneDX 1.6 schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sbom))
	if err != nil {
		return fmt.Errorf("the SBOM is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("the SBOM does not validate against the CycloneDX 1.6 schema: %w", err)
	}
	return nil
}

// decodeSBOM reads an SBOM with the CycloneDX library.
func decodeSBOM(t *testing.T, b []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("cyclonedx-go cannot decode the SBOM: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Fatalf("bomFormat %q specVersion %s, want CycloneDX 1.6", bom.BOMFormat, bom.SpecVersion)
	}
	return &bom
}

// goVersionM lists a binary's modules as `go version -m` prints them
// (path version), the main module first.
func goVersionM(t *testing.T, bin string) (main string, deps map[string]string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	deps = map[string]string{}
	var replaced string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "mod":
			main = f[1]
		case len(f) >= 3 && f[0] == "dep":
			deps[f[1]], replaced = f[2], f[1]
		case len(f) >= 3 && f[0] == "=>":
			delete(deps, replaced)
			deps[f[1]] = f[2]
		}
	}
	return main, deps
}

// TestSBOM checks the SBOM written beside the image: valid CycloneDX 1.6
// (schema and library), the image as its subject (by index digest), each
// platform's binaries with their SHA-256, every Go module `go version -m`
// finds in each binary with its version and pkg:golang purl, the Go
// standard library; and the SBOM attached to the index in the layout as
// an OCI artifact whose subject is the index.
func TestSBOM(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	res, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.sbom)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateCycloneDX(t, raw); err != nil {
		t.Fatal(err)
	}
	// The validator refuses what the schema forbids.
	if err := validateCycloneDX(t, bytes.Replace(raw, []byte(`"type": "container"`), []byte(`"type": "box"`), 1)); err == nil {
		t.Fatal("the schema validator accepts a component of type \"box\"")
	}
	bom := decodeSBOM(t, raw)

	mc := bom.Metadata.Component
	if mc == nil || mc.Type != cdx.ComponentTypeContainer || mc.Version != testVersion ||
		!strings.Contains(mc.PackageURL, "@sha256%3A"+res.index.Hex) {
		t.Fatalf("metadata.component = %+v, want the container liberator %s with purl naming index %s", mc, testVersion, res.index)
	}
	byRef := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		byRef[c.BOMRef] = c
	}
	deps := map[string][]string{}
	for _, d := range *bom.Dependencies {
		if d.Dependencies != nil {
			deps[d.Ref] = *d.Dependencies
		}
	}
	binaries := 0
	for _, c := range *bom.Components {
		if c.Type != cdx.ComponentTypeApplication {
			continue
		}
		binaries++
		props := map[string]string{}
		for _, p := range *c.Properties {
			props[p.Name] = p.Value
		}
		plat, path := props["liberator:image:platform"], props["liberator:image:path"]
		built := filepath.Join(o.binDir, strings.ReplaceAll(plat, "/", "_"), strings.TrimPrefix(path, "/"))
		if c.Hashes == nil || len(*c.Hashes) != 1 || (*c.Hashes)[0].Algorithm != cdx.HashAlgoSHA256 || (*c.Hashes)[0].Value != sha256File(t, built) {
			t.Errorf("%s %s: hashes %v, want the SHA-256 of %s", plat, path, c.Hashes, built)
		}
		mainMod, want := goVersionM(t, built)
		if !strings.HasPrefix(c.PackageURL, "pkg:golang/"+mainMod+"@"+testVersion) {
			t.Errorf("%s %s: purl %s, want pkg:golang/%s@%s...", plat, path, c.PackageURL, mainMod, testVersion)
		}
		got := map[string]string{}
		for _, r := range deps[c.BOMRef] {
			dc, ok := byRef[r]
			if !ok {
				t.Errorf("%s %s depends on %s, which is not a component", plat, path, r)
				continue
			}
			if want := "pkg:golang/" + dc.Name + "@" + strings.ReplaceAll(dc.Version, "+", "%2B"); dc.PackageURL != want {
				t.Errorf("component %s: purl %s, want %s", dc.Name, dc.PackageURL, want)
			}
			got[dc.Name] = dc.Version
		}
		for m, v := range want {
			if got[m] != v {
				t.Errorf("%s %s: go version -m lists %s %s, the SBOM has %q", plat, path, m, v, got[m])
			}
		}
		if got["stdlib"] == "" || !strings.HasPrefix(got["stdlib"], "v1.") {
			t.Errorf("%s %s: no Go standard library (stdlib) among its dependencies: %v", plat, path, got)
		}
		if len(got) != len(want)+1 {
			t.Errorf("%s %s: the SBOM lists %d modules, go version -m %d (+ stdlib)", plat, path, len(got), len(want))
		}
	}
	if binaries != 4 {
		t.Errorf("the SBOM lists %d binaries, want 4 (liberator and liberator-agent on 2 platforms)", binaries)
	}

	// Attached to the index: an OCI artifact whose subject is the index.
	p, err := layout.FromPath(o.layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := p.ImageIndex()
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range rm.Manifests {
		if d.ArtifactType != sbomMediaType {
			continue
		}
		found = true
		mb, err := os.ReadFile(filepath.Join(o.layoutDir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		if h, n, _ := v1.SHA256(bytes.NewReader(mb)); h != d.Digest || n != d.Size {
			t.Errorf("the SBOM manifest's blob is %s (%d bytes), index.json says %s (%d)", h, n, d.Digest, d.Size)
		}
		var m v1.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		if m.Subject == nil || m.Subject.Digest != res.index {
			t.Errorf("the SBOM artifact's subject = %v, want the index %s", m.Subject, res.index)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != sbomMediaType {
			t.Fatalf("the SBOM artifact has layers %v, want one %s", m.Layers, sbomMediaType)
		}
		lb, err := os.ReadFile(filepath.Join(o.layoutDir, "blobs", "sha256", m.Layers[0].Digest.Hex))
		if err != nil || !bytes.Equal(lb, raw) {
			t.Errorf("the SBOM artifact's blob is not the SBOM file (%v)", err)
		}
	}
	if !found {
		t.Errorf("the layout has no SBOM artifact (artifactType %s)", sbomMediaType)
	}
}
