// Command imagebuild writes the liberator container image without a
// container engine, the way ko does: for each platform (linux/amd64 and
// linux/arm64 by default) it puts the static linux binaries at /liberator
// and /liberator-agent (the agent alone, which the agent DaemonSet runs)
// on an empty base (scratch) and sets the entrypoint, the non-root user
// 65532:65532 and the OCI labels, with go-containerregistry; the platform
// images go into one OCI image index.
//
// The output is an OCI image layout, as a directory (-layout-dir) and as
// one tar file (-out), whose index.json names the image index (tagged with
// org.opencontainers.image.ref.name) and the SBOM attached to it (an OCI
// artifact of type application/vnd.cyclonedx+json whose subject is the
// index). The tar also carries a `docker save` manifest.json for the build
// machine's platform, so that `docker load` takes it. The SBOM is also
// written beside the image (-sbom). The same inputs give the same bytes.
//
// The base is empty because the build must work offline: the Dockerfile's
// base, gcr.io/distroless/static:nonroot, would have to be pulled. What
// distroless adds that the controller can use is written into the image
// instead: /etc/passwd and /etc/group with the nonroot user, and the CA
// certificates of the build machine (-ca-certs) for TLS to BMCs.
//
// With -variant fence-agents the image also carries the ClusterLabs fence
// agents and what fence_ipmilan needs to run (python3, ipmitool), taken
// from Debian packages (see debs.go), for fence classes with provider
// fence-agent.
//
//	go run -C hack/imagebuild . -bin-dir $PWD/bin -platforms linux/amd64,linux/arm64 \
//	    -out $PWD/bin/liberator-image.tar -layout-dir $PWD/bin/liberator-image \
//	    -sbom $PWD/bin/liberator-image.sbom.cdx.json \
//	    -tag ghcr.io/liberator-dev/liberator:v0.1.0 -version v0.1.0 -revision abc1234
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed settings, as in the Dockerfile.
const (
	entrypoint = "/liberator"
	// agentPath is the agent's own binary (cmd/liberator-agent), the
	// command of the agent DaemonSet.
	agentPath = "/liberator-agent"
	user      = "65532:65532"
	source    = "https://github.com/liberator-dev/liberator"
	// baseName is the image's base: none. The engine-less build starts
	// from an empty file system (there is no base image, so no base digest
	// to record); the Dockerfile's stages record theirs.
	baseName = "scratch"
)

// The variants of the image.
const (
	variantDefault     = ""
	variantFenceAgents = "fence-agents"
)

type options struct {
	binDir    string   // DIR/linux_ARCH/{liberator,liberator-agent}: static linux binaries
	platforms []string // linux/ARCH, in index order
	out       string   // tar file to write (OCI layout + docker manifest.json)
	layoutDir string   // OCI layout directory to write; empty for none
	sbom      string   // CycloneDX JSON file to write; empty for none
	tag       string   // image reference, for example ghcr.io/liberator-dev/liberator:v0.1.0
	version   string
	revision  string
	created   time.Time
	caCerts   string // CA bundle to include; empty for none
	variant   string // variantDefault or variantFenceAgents
	// packages are the Debian packages of the fence-agents variant, for
	// its only platform.
	packages []debPackage
}

// result is what run built: the index's digest and each platform's.
type result struct {
	index     v1.Hash
	platforms map[string]v1.Hash // linux/ARCH -> image manifest digest
}

func main() {
	var o options
	var created, platforms, debDir, pkgList string
	flag.StringVar(&o.binDir, "bin-dir", "bin", "directory with linux_ARCH/liberator and linux_ARCH/liberator-agent for each platform")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	flag.StringVar(&o.out, "out", "bin/liberator-image.tar", "tar file to write: an OCI image layout with a docker-archive manifest.json")
	flag.StringVar(&o.layoutDir, "layout-dir", "", "OCI image layout directory to write (replaced); empty for none")
	flag.StringVar(&o.sbom, "sbom", "", "CycloneDX JSON SBOM to write; empty for none (the SBOM is attached to the index in the layout either way)")
	flag.StringVar(&o.tag, "tag", "ghcr.io/liberator-dev/liberator:dev", "image reference recorded in the layout")
	flag.StringVar(&o.version, "version", "dev", "org.opencontainers.image.version label")
	flag.StringVar(&o.revision, "revision", "unknown", "org.opencontainers.image.revision label")
	flag.StringVar(&created, "created", "", "creation time, RFC 3339 (default: $SOURCE_DATE_EPOCH, else the Unix epoch, for reproducible builds)")
	flag.StringVar(&o.caCerts, "ca-certs", defaultCACerts(), "CA bundle to install as /etc/ssl/certs/ca-certificates.crt; empty for none")
	flag.StringVar(&o.variant, "variant", "", "empty for the default image, or fence-agents")
	flag.StringVar(&debDir, "deb-dir", "", "fence-agents: directory to download the Debian packages into (a cache: packages already there with the right SHA-256 are used)")
	flag.StringVar(&pkgList, "packages", "fence-agents.packages", "fence-agents: the file naming the packages (roots and exclusions)")
	flag.Parse()
	o.platforms = strings.Split(platforms, ",")
	var err error
	if o.created, err = parseCreated(created); err == nil {
		if o.variant == variantFenceAgents {
			o.packages, err = fetchPackages(pkgList, debDir, o.platforms)
		}
		if err == nil {
			_, err = run(o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func defaultCACerts() string {
	const p = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func parseCreated(s string) (time.Time, error) {
	if s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created: %w", err)
		}
		return t.UTC(), nil
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// archOf returns ARCH of "linux/ARCH".
func archOf(platform string) (string, error) {
	goos, arch, ok := strings.Cut(platform, "/")
	if !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
		return "", fmt.Errorf("-platforms: %q is not linux/ARCH", platform)
	}
	return arch, nil
}

func run(o options) (result, error) {
	res := result{platforms: map[string]v1.Hash{}}
	if len(o.platforms) == 0 {
		return res, errors.New("-platforms: none given")
	}
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return res, fmt.Errorf("-tag: %w", err)
	}
	switch o.variant {
	case variantDefault:
	case variantFenceAgents:
		if len(o.platforms) != 1 || len(o.packages) == 0 {
			return res, errors.New("-variant fence-agents: one platform and its Debian packages are needed")
		}
	default:
		return res, fmt.Errorf("-variant: %q is not fence-agents (or empty for the default image)", o.variant)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var images []platformImage
	for _, p := range o.platforms {
		arch, err := archOf(p)
		if err != nil {
			return res, err
		}
		bins := binaries{liberator: filepath.Join(o.binDir, "linux_"+arch, "liberator"), agent: filepath.Join(o.binDir, "linux_"+arch, "liberator-agent")}
		img, err := image(o, arch, bins)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
		d, err := img.Digest()
		if err != nil {
			return res, err
		}
		res.platforms[p] = d
		images = append(images, platformImage{platform: p, arch: arch, img: img, bins: bins})
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx = mutate.Annotations(idx, annotations(o)).(v1.ImageIndex)
	if res.index, err = idx.Digest(); err != nil {
		return res, err
	}
	sbom, err := buildSBOM(o, ref, res.index, images)
	if err != nil {
		return res, fmt.Errorf("SBOM: %w", err)
	}
	if err := write(o, ref, idx, images, sbom); err != nil {
		return res, err
	}
	if o.sbom != "" {
		if err := writeFile(o.sbom, sbom); err != nil {
			return res, err
		}
	}
	fmt.Printf("wrote %s", o.out)
	if o.layoutDir != "" {
		fmt.Printf(" and %s/", o.layoutDir)
	}
	fmt.Printf(": %s\n  index %s\n", o.tag, res.index)
	for _, p := range o.platforms {
		fmt.Printf("  %-12s %s\n", p, res.platforms[p])
	}
	if o.sbom != "" {
		fmt.Printf("  SBOM %s (CycloneDX 1.6, attached to the index as %s)\n", o.sbom, sbomMediaType)
	}
	return res, nil
}

type binaries struct{ liberator, agent string }

type platformImage struct {
	platform, arch string
	img            v1.Image
	bins           binaries
}

// annotations are the OCI annotations of the index and labels of each
// image.
func annotations(o options) map[string]string {
	title := "liberator"
	if o.variant != variantDefault {
		title += " (" + o.variant + ")"
	}
	return map[string]string{
		"org.opencontainers.image.title":     title,
		"org.opencontainers.image.version":   o.version,
		"org.opencontainers.image.revision":  o.revision,
		"org.opencontainers.image.created":   o.created.Format(time.RFC3339),
		"org.opencontainers.image.source":    source,
		"org.opencontainers.image.licenses":  "Apache-2.0",
		"org.opencontainers.image.base.name": baseName,
	}
}

// image builds one platform's image on an empty base, OCI media types: one
// layer with the binaries and /etc, and for the fence-agents variant the
// Debian packages' files below it.
func image(o options, arch string, bins binaries) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	env := "PATH=/"
	if o.variant == variantFenceAgents {
		debTar, err := debRootfs(o.packages, o.created)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, p := range o.packages {
			names = append(names, p.Name+"="+p.Version)
		}
		if img, err = appendLayer(img, debTar, o.created, "hack/imagebuild: Debian packages "+strings.Join(names, " "), ""); err != nil {
			return nil, err
		}
		env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	layerTar, err := rootfs(o, bins)
	if err != nil {
		return nil, err
	}
	if img, err = appendLayer(img, layerTar, o.created, "hack/imagebuild: "+entrypoint+" "+agentPath, "liberator "+o.version); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Created = v1.Time{Time: o.created}
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.User = user
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{env}
	cf.Config.Labels = annotations(o)
	return mutate.ConfigFile(img, cf)
}

func appendLayer(img v1.Image, layerTar []byte, created time.Time, createdBy, comment string) (v1.Image, error) {
	// Compressed once here (go-containerregistry would compress again for
	// every digest and write); no time or name in the gzip header.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layerTar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: createdBy, Comment: comment},
	})
}

// readELF reads a static linux binary.
func readELF(p string) ([]byte, error) {
	bin, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(bin) < 4 || string(bin[:4]) != "\x7fELF" {
		return nil, fmt.Errorf("%s is not a linux (ELF) binary", p)
	}
	return bin, nil
}

// rootfs is the image's layer with the binaries.
func rootfs(o options, bins binaries) ([]byte, error) {
	bin, err := readELF(bins.liberator)
	if err != nil {
		return nil, err
	}
	agentBin, err := readELF(bins.agent)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, mode int64, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: mode, ModTime: o.created, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if data == nil {
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	type file struct {
		name string
		mode int64
		data []byte // nil for a directory
	}
	files := []file{
		{"etc", 0o755, nil},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
	}
	if o.caCerts != "" {
		ca, err := os.ReadFile(o.caCerts)
		if err != nil {
			return nil, err
		}
		files = append(files, file{"etc/ssl", 0o755, nil}, file{"etc/ssl/certs", 0o755, nil}, file{"etc/ssl/certs/ca-certificates.crt", 0o644, ca})
	}
	files = append(files, file{"home", 0o755, nil}, file{entrypoint[1:], 0o755, bin}, file{agentPath[1:], 0o755, agentBin},
		file{"tmp", 0o1777, nil})
	for _, f := range files {
		if err := add(f.name, f.mode, f.data); err != nil {
			return nil, err
		}
	}
	// The nonroot user's home, owned by it.
	if err := tw.WriteHeader(&tar.Header{Name: "home/nonroot/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 65532, Gid: 65532, ModTime: o.created, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sbomMediaType is the SBOM's media type and artifact type.
const sbomMediaType = "application/vnd.cyclonedx+json"

// write stores the index as an OCI layout, with the SBOM attached to it
// and a docker manifest.json for the build machine's platform, in
// o.layoutDir (if set) and in the tar file o.out.
func write(o options, ref name.Tag, idx v1.ImageIndex, images []platformImage, sbom []byte) error {
	dir := o.layoutDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "imagebuild-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return err
	}
	if err := attachSBOM(p, idx, sbom, o.created); err != nil {
		return err
	}

	// docker load reads manifest.json: one image, the build machine's
	// platform if built, else the first.
	img := images[0].img
	for _, pi := range images {
		if pi.arch == runtime.GOARCH {
			img = pi.img
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	dm := []map[string]any{{"Config": blobPath(cfgName), "RepoTags": []string{ref.Name()}}}
	var lp []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		lp = append(lp, blobPath(d))
	}
	dm[0]["Layers"] = lp
	mj, err := json.Marshal(dm)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
		return err
	}
	return tarDir(dir, o.out, o.created)
}

// attachSBOM writes the SBOM as an OCI artifact (image manifest with
// artifactType, the empty config, the SBOM as its one layer) whose subject
// is the index, and names it in the layout's index.json, as `oras attach`
// would; registries serve it through the referrers API.
func attachSBOM(p layout.Path, idx v1.ImageIndex, sbom []byte, created time.Time) error {
	blob := func(b []byte, mt types.MediaType) (v1.Descriptor, error) {
		h, n, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return v1.Descriptor{}, err
		}
		return v1.Descriptor{MediaType: mt, Digest: h, Size: n}, p.WriteBlob(h, io.NopCloser(bytes.NewReader(b)))
	}
	emptyJSON := []byte("{}")
	cfg, err := blob(emptyJSON, "application/vnd.oci.empty.v1+json")
	if err != nil {
		return err
	}
	cfg.Data = emptyJSON
	layer, err := blob(sbom, sbomMediaType)
	if err != nil {
		return err
	}
	layer.Annotations = map[string]string{"org.opencontainers.image.title": "sbom.cdx.json"}
	subject, err := partialDescriptor(idx)
	if err != nil {
		return err
	}
	m := struct {
		SchemaVersion int64             `json:"schemaVersion"`
		MediaType     types.MediaType   `json:"mediaType"`
		ArtifactType  string            `json:"artifactType"`
		Config        v1.Descriptor     `json:"config"`
		Layers        []v1.Descriptor   `json:"layers"`
		Subject       *v1.Descriptor    `json:"subject"`
		Annotations   map[string]string `json:"annotations"`
	}{2, types.OCIManifestSchema1, sbomMediaType, cfg, []v1.Descriptor{layer}, subject,
		map[string]string{"org.opencontainers.image.created": created.Format(time.RFC3339)}}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	desc, err := blob(mb, types.OCIManifestSchema1)
	if err != nil {
		return err
	}
	desc.ArtifactType = sbomMediaType
	return p.AppendDescriptor(desc)
}

// partialDescriptor is the index's descriptor, as a subject.
func partialDescriptor(idx v1.ImageIndex) (*v1.Descriptor, error) {
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	n, err := idx.Size()
	if err != nil {
		return nil, err
	}
	return &v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: n}, nil
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// tarDir writes dir as a tar file with sorted entries and fixed times and
// owners, so that the same image gives the same bytes.
func tarDir(dir, out string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: n, ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size(), Format: tar.FormatPAX}
		if fi.IsDir() {
			hdr = &tar.Header{Name: n + "/", ModTime: mtime, Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.IsDir() {
			src, err := os.Open(filepath.Join(dir, n))
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
