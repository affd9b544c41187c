package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Property names of the SBOM's components (namespace liberator:).
const (
	propPlatform = "liberator:image:platform" // linux/ARCH of a binary
	propPath     = "liberator:image:path"     // where the image holds a binary
	propManifest = "liberator:image:manifest" // the platform image's digest
	propGoSum    = "liberator:go:sum"         // a module's go.sum hash (h1:, a hash of the module's file tree, not of one file)
)

// buildSBOM describes the image in CycloneDX 1.6 JSON: the image (by
// index digest) as the subject; each platform's binaries with their
// SHA-256 and the Go modules and standard library each one links, read
// from the binary itself (debug/buildinfo); for the fence-agents variant
// the Debian packages its files come from, with the SHA-256 of each .deb.
// The same inputs give the same bytes (timestamp: the image's creation
// time; serial number: from the index digest).
func buildSBOM(o options, ref name.Tag, index v1.Hash, images []platformImage) ([]byte, error) {
	imageName := "liberator"
	if o.variant != variantDefault {
		imageName += "-" + o.variant
	}
	imageRef := "image"
	bom := cdx.NewBOM()
	bom.SerialNumber = serialNumber(index)
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.created.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Group: "github.com/liberator-dev/liberator", Name: "hack/imagebuild",
		}}},
		Component: &cdx.Component{
			BOMRef: imageRef, Type: cdx.ComponentTypeContainer, Name: imageName, Version: o.version,
			PackageURL: fmt.Sprintf("pkg:oci/%s@%s?repository_url=%s&tag=%s", imageName,
				url.QueryEscape(index.String()), url.QueryEscape(ref.Context().Name()), url.QueryEscape(ref.TagStr())),
			Properties: &[]cdx.Property{
				{Name: "org.opencontainers.image.base.name", Value: baseName},
				{Name: "org.opencontainers.image.revision", Value: o.revision},
				{Name: "org.opencontainers.image.source", Value: source},
			},
		},
	}
	components := map[string]cdx.Component{}
	deps := map[string][]string{}
	for _, pi := range images {
		manifest, err := pi.img.Digest()
		if err != nil {
			return nil, err
		}
		for _, b := range []struct{ file, path string }{{pi.bins.liberator, entrypoint}, {pi.bins.agent, agentPath}} {
			c, modules, err := goBinary(b.file, o.version, pi.arch)
			if err != nil {
				return nil, err
			}
			c.BOMRef = pi.platform + ":" + b.path
			c.Properties = &[]cdx.Property{
				{Name: propManifest, Value: manifest.String()},
				{Name: propPath, Value: b.path},
				{Name: propPlatform, Value: pi.platform},
			}
			components[c.BOMRef] = c
			deps[imageRef] = append(deps[imageRef], c.BOMRef)
			for _, m := range modules {
				components[m.BOMRef] = m
				deps[c.BOMRef] = append(deps[c.BOMRef], m.BOMRef)
			}
		}
	}
	for _, p := range o.packages {
		c := cdx.Component{
			Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, Supplier: &cdx.OrganizationalEntity{Name: "Debian"},
			PackageURL: fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=debian-%s", p.Name, purlVersion(p.Version), p.Arch, p.DebianVersion),
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.SHA256}},
		}
		c.BOMRef = c.PackageURL
		components[c.BOMRef] = c
		deps[imageRef] = append(deps[imageRef], c.BOMRef)
	}

	var refs []string
	for r := range components {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	var comps []cdx.Component
	for _, r := range refs {
		comps = append(comps, components[r])
	}
	bom.Components = &comps
	var dependencies []cdx.Dependency
	for _, r := range append([]string{imageRef}, refs...) {
		d := cdx.Dependency{Ref: r}
		if on := deps[r]; len(on) > 0 {
			sort.Strings(on)
			d.Dependencies = &on
		}
		dependencies = append(dependencies, d)
	}
	bom.Dependencies = &dependencies

	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// goBinary reads a Go binary's build information: its component (without
// bom-ref and properties) and the components of the modules and standard
// library it links.
func goBinary(file, version, arch string) (cdx.Component, []cdx.Component, error) {
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		return cdx.Component{}, nil, fmt.Errorf("%s: %w", file, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return cdx.Component{}, nil, err
	}
	sum := sha256.Sum256(data)
	pkg := bi.Path // for example github.com/liberator-dev/liberator/cmd/liberator
	c := cdx.Component{
		Type: cdx.ComponentTypeApplication, Name: pkg[strings.LastIndex(pkg, "/")+1:], Version: version,
		PackageURL: fmt.Sprintf("pkg:golang/%s@%s?goarch=%s&goos=linux", bi.Main.Path, purlVersion(version), arch),
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum[:])}},
	}
	if sub := strings.TrimPrefix(strings.TrimPrefix(pkg, bi.Main.Path), "/"); sub != pkg && sub != "" {
		c.PackageURL += "#" + sub
	}
	std := cdx.Component{Type: cdx.ComponentTypeLibrary, Name: "stdlib", Version: "v" + strings.TrimPrefix(bi.GoVersion, "go")}
	std.PackageURL = "pkg:golang/stdlib@" + purlVersion(std.Version)
	std.BOMRef = std.PackageURL
	modules := []cdx.Component{std}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		m := cdx.Component{Type: cdx.ComponentTypeLibrary, Name: d.Path, Version: d.Version,
			PackageURL: "pkg:golang/" + d.Path + "@" + purlVersion(d.Version)}
		m.BOMRef = m.PackageURL
		if d.Sum != "" {
			m.Properties = &[]cdx.Property{{Name: propGoSum, Value: d.Sum}}
		}
		modules = append(modules, m)
	}
	return c, modules, nil
}

// purlVersion percent-encodes a version for a package URL ("+" of
// +incompatible, ":" of a Debian epoch).
func purlVersion(v string) string {
	return strings.NewReplacer("%", "%25", "+", "%2B", ":", "%3A", "/", "%2F", "?", "%3F", "#", "%23", "@", "%40").Replace(v)
}

// serialNumber is a UUID (version 5 layout) made from the index digest, so
// that the same image has the same SBOM.
func serialNumber(index v1.Hash) string {
	sum := sha256.Sum256([]byte("liberator SBOM " + index.String()))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return "urn:uuid:" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
