package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const module = "github.com/liberator-dev/liberator"

// The version the test binaries are built with.
const (
	testVersion  = "v9.8.7-test"
	testRevision = "0123abc"
	testDate     = "2026-01-02T03:04:05Z"
)

var testPlatforms = []string{"linux/amd64", "linux/arm64"}

// buildBinary builds a command of the module for linux/arch as `make
// build` does, with the given -X flags.
func buildBinary(t *testing.T, out, pkg, arch, xflags string) {
	t.Helper()
	build := exec.Command("go", "build", "-trimpath", "-o", out, "-ldflags", "-s -w "+xflags, pkg)
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s for %s: %v\n%s", pkg, arch, err, out)
	}
}

var (
	binOnce sync.Once
	binDir  string
	binErr  bool
)

// testBinaries builds liberator and liberator-agent for both platforms,
// once for all tests, into DIR/linux_ARCH/ as `make image` does.
func testBinaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binErr = true
		dir, err := os.MkdirTemp("", "imagebuild-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
		for _, p := range testPlatforms {
			arch := strings.TrimPrefix(p, "linux/")
			d := filepath.Join(dir, "linux_"+arch)
			buildBinary(t, filepath.Join(d, "liberator"), "./cmd/liberator", arch,
				"-X "+module+"/internal/cli.Version="+testVersion+" -X "+module+"/internal/cli.Commit="+testRevision+" -X "+module+"/internal/cli.Date="+testDate)
			buildBinary(t, filepath.Join(d, "liberator-agent"), "./cmd/liberator-agent", arch,
				"-X main.Version="+testVersion+" -X main.Commit="+testRevision+" -X main.Date="+testDate)
		}
		binErr = false
	})
	if binErr {
		t.Fatal("building the test binaries failed (see the first test's log)")
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func testOptions(t *testing.T, dir string) options {
	return options{
		binDir:    testBinaries(t),
		platforms: testPlatforms,
		out:       filepath.Join(dir, "image.tar"),
		layoutDir: filepath.Join(dir, "layout"),
		sbom:      filepath.Join(dir, "image.sbom.cdx.json"),
		tag:       "registry.example/liberator:" + testVersion,
		version:   testVersion, revision: testRevision,
		created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		caCerts: defaultCACerts(),
	}
}

// TestMultiArchIndex builds the image for linux/amd64 and linux/arm64 and
// reads it back as a runtime or a registry client would: an OCI image
// layout whose index.json names one image index (tagged) with exactly the
// two platforms, checked by go-containerregistry's validator (digests,
// sizes, configs, layers, platforms); each platform's config (entrypoint,
// user, labels, architecture) and layer (both binaries, built for that
// platform's ELF machine); the tar (the same layout, and a `docker load`
// manifest for the build machine's platform); and that the same inputs
// give the same digests and bytes.
func TestMultiArchIndex(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	res, err := run(o)
	if err != nil {
		t.Fatal(err)
	}

	p, err := layout.FromPath(o.layoutDir)
	if err != nil {
		t.Fatalf("read the OCI layout: %v", err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var idxDesc *v1.Descriptor
	for i, d := range rm.Manifests {
		if d.MediaType == types.OCIImageIndex {
			if idxDesc != nil {
				t.Fatalf("index.json names two image indexes: %s, %s", idxDesc.Digest, d.Digest)
			}
			idxDesc = &rm.Manifests[i]
		}
	}
	if idxDesc == nil {
		t.Fatalf("index.json names no image index (%s); it has %v", types.OCIImageIndex, rm.Manifests)
	}
	if got := idxDesc.Annotations["org.opencontainers.image.ref.name"]; got != testVersion {
		t.Errorf("the index's ref.name = %q, want %s", got, testVersion)
	}
	if idxDesc.Digest != res.index {
		t.Errorf("run reported index %s, the layout holds %s", res.index, idxDesc.Digest)
	}
	idx, err := root.ImageIndex(idxDesc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("go-containerregistry's validator refuses the index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type = %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	var got []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		plat := m.Platform.OS + "/" + m.Platform.Architecture
		got = append(got, plat)
		if m.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s, want %s", plat, m.MediaType, types.OCIManifestSchema1)
		}
		if res.platforms[plat] != m.Digest {
			t.Errorf("run reported %s for %s, the index holds %s", res.platforms[plat], plat, m.Digest)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, m.Platform.Architecture, filepath.Join(o.binDir, "linux_"+m.Platform.Architecture))
	}
	if !slices.Equal(got, testPlatforms) {
		t.Errorf("the index has platforms %v, want exactly %v", got, testPlatforms)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":   testVersion,
		"org.opencontainers.image.revision":  testRevision,
		"org.opencontainers.image.base.name": "scratch",
	} {
		if got := im.Annotations[k]; got != want {
			t.Errorf("index annotation %s = %q, want %q", k, got, want)
		}
	}

	// The tar holds the same layout ...
	tdir := filepath.Join(dir, "untarred")
	untar(t, o.out, tdir)
	for _, f := range []string{"index.json", "oci-layout"} {
		a, _ := os.ReadFile(filepath.Join(o.layoutDir, f))
		b, err := os.ReadFile(filepath.Join(tdir, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("the tar's %s differs from the layout directory's (%v)", f, err)
		}
	}
	tidx, err := layout.ImageIndexFromPath(tdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tidx.ImageIndex(idxDesc.Digest); err != nil {
		t.Errorf("the tar's layout lacks the index %s: %v", idxDesc.Digest, err)
	}
	// ... and a docker-archive manifest.json for the build machine's
	// platform (docker load takes one platform).
	dimg, err := tarball.ImageFromPath(o.out, nil)
	if err != nil {
		t.Fatalf("read the tar as a docker archive: %v", err)
	}
	host, err := idx.Image(res.platforms["linux/"+runtime.GOARCH])
	if err != nil {
		t.Fatal(err)
	}
	dcfg, _ := dimg.ConfigName()
	hcfg, _ := host.ConfigName()
	if dcfg != hcfg {
		t.Errorf("manifest.json's image has config %s, want the linux/%s image's %s", dcfg, runtime.GOARCH, hcfg)
	}

	// Reproducible: the same inputs give the same digests and bytes.
	o2 := o
	d2 := t.TempDir()
	o2.out, o2.layoutDir, o2.sbom = filepath.Join(d2, "image.tar"), filepath.Join(d2, "layout"), filepath.Join(d2, "sbom.json")
	res2, err := run(o2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.index != res.index {
		t.Errorf("two builds from the same inputs give indexes %s and %s", res.index, res2.index)
	}
	for _, f := range [][2]string{{o.out, o2.out}, {o.sbom, o2.sbom}} {
		if a, b := digestFile(t, f[0]), digestFile(t, f[1]); a != b {
			t.Errorf("two builds from the same inputs differ: %s %x, %s %x", filepath.Base(f[0]), a, filepath.Base(f[1]), b)
		}
	}
	// A different input gives a different index.
	o3 := o2
	o3.revision = "4567def"
	res3, err := run(o3)
	if err != nil {
		t.Fatal(err)
	}
	if res3.index == res.index {
		t.Errorf("a build with another revision has the same index digest %s", res.index)
	}
}

// checkImage checks one platform's image: config and layer.
func checkImage(t *testing.T, img v1.Image, arch, built string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != arch {
		t.Errorf("%s: config platform = %s/%s", arch, cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/liberator"}) {
		t.Errorf("%s: entrypoint = %q, want [/liberator]", arch, cf.Config.Entrypoint)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: user = %q, want 65532:65532", arch, cf.Config.User)
	}
	if len(cf.Config.Cmd) != 0 {
		t.Errorf("%s: cmd = %q, want none", arch, cf.Config.Cmd)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testRevision,
		"org.opencontainers.image.created":  testDate,
		"org.opencontainers.image.source":   "https://github.com/liberator-dev/liberator",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("%s: label %s = %q, want %q", arch, k, got, want)
		}
	}
	if want, _ := time.Parse(time.RFC3339, testDate); !cf.Created.Time.Equal(want) {
		t.Errorf("%s: created = %v, want %v", arch, cf.Created.Time, want)
	}
	files, contents := layerFiles(t, img)
	if files["etc/passwd"] == nil || !strings.Contains(string(contents["etc/passwd"]), ":65532:65532:") {
		t.Errorf("%s: the image has no /etc/passwd with user 65532", arch)
	}
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	for _, b := range []struct {
		name string
		args []string
		out  string
	}{
		{"liberator", []string{"version"}, "liberator " + testVersion + " (commit " + testRevision + ", built " + testDate},
		{"liberator-agent", []string{"--version"}, "liberator-agent version " + testVersion + " (commit " + testRevision + ", built " + testDate},
	} {
		h := files[b.name]
		if h == nil || h.Typeflag != tar.TypeReg {
			t.Errorf("%s: the image has no file /%s", arch, b.name)
			continue
		}
		if h.Mode&0o755 != 0o755 || h.Uid != 0 {
			t.Errorf("%s: /%s mode %o uid %d, want 0755 owned by root (executable by 65532)", arch, b.name, h.Mode, h.Uid)
		}
		data := contents[b.name]
		if want, _ := os.ReadFile(filepath.Join(built, b.name)); !bytes.Equal(data, want) {
			t.Errorf("%s: /%s in the image (%d bytes) is not the binary built (%d bytes)", arch, b.name, len(data), len(want))
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: /%s is not an ELF file: %v", arch, b.name, err)
			continue
		}
		if f.Machine != wantMachine || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: /%s is built for %s %s, want %s", arch, b.name, f.Class, f.Machine, wantMachine)
		}
		if arch != runtime.GOARCH {
			continue
		}
		// The build machine's platform: the binary runs from the image.
		p := filepath.Join(t.TempDir(), b.name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(p, b.args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), b.out) {
			t.Errorf("%s: /%s %s: %v, printed %q, want %q", arch, b.name, strings.Join(b.args, " "), err, out, b.out)
		}
	}
}

// layerFiles reads the image's flattened file system.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	files := map[string]*tar.Header{}
	contents := map[string][]byte{}
	eachLayerEntry(t, img, func(h *tar.Header, r io.Reader) {
		n := strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), "./")
		files[n] = h
		if h.Typeflag == tar.TypeReg {
			var err error
			if contents[n], err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
	})
	return files, contents
}

// eachLayerEntry calls fn with every entry of the image's layers, in
// order (the layer's reader positioned at the entry's content).
func eachLayerEntry(t *testing.T, img v1.Image, fn func(h *tar.Header, r io.Reader)) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fn(h, tr)
		}
		rc.Close()
	}
}

func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func digestFile(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func sha256File(t *testing.T, p string) string {
	d := digestFile(t, p)
	return hex.EncodeToString(d[:])
}

// Without a platform's binaries there is no image for it: the error names
// the file that is missing.
func TestMissingBinary(t *testing.T) {
	dir := t.TempDir()
	_, err := run(options{binDir: dir, platforms: []string{"linux/amd64"}, out: filepath.Join(dir, "image.tar"), tag: "registry.example/liberator:v1"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "linux_amd64", "liberator")) {
		t.Errorf("run without binaries: %v, want an error naming %s", err, filepath.Join(dir, "linux_amd64", "liberator"))
	}
	_, err = run(options{binDir: dir, platforms: []string{"linux"}, out: filepath.Join(dir, "image.tar"), tag: "registry.example/liberator:v1"})
	if err == nil || !strings.Contains(err.Error(), "-platforms") {
		t.Errorf("run with platform \"linux\": %v, want an error naming -platforms", err)
	}
}
