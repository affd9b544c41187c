package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const module = "github.com/liberator-dev/liberator"

// TestImage builds the liberator binary as `make build` does, writes the
// image tarball, and checks it as a container runtime would read it: the
// config (entrypoint, user, labels, platform), the layer (the binary at
// /liberator, executable), both archive formats, and that the binary in the
// image runs and reports the version it was built with.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a linux binary; running it needs linux")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "liberator")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "-ldflags",
		"-s -w -X "+module+"/internal/cli.Version=v9.8.7-test -X "+module+"/internal/cli.Commit=0123abc -X "+module+"/internal/cli.Date=2026-01-02T03:04:05Z",
		"./cmd/liberator")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/liberator: %v\n%s", err, out)
	}

	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := options{binary: bin, out: filepath.Join(dir, "image.tar"), tag: "registry.example/liberator:v9.8.7-test",
		version: "v9.8.7-test", revision: "0123abc", created: created, arch: runtime.GOARCH, caCerts: defaultCACerts()}
	if err := run(o); err != nil {
		t.Fatal(err)
	}

	// As `docker load` reads it (manifest.json).
	img, err := tarball.ImageFromPath(o.out, nil)
	if err != nil {
		t.Fatalf("read as a docker archive: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/liberator"}) {
		t.Errorf("entrypoint = %q, want [/liberator]", cf.Config.Entrypoint)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", cf.Config.User)
	}
	if len(cf.Config.Cmd) != 0 {
		t.Errorf("cmd = %q, want none", cf.Config.Cmd)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "v9.8.7-test",
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created = %v, want %v", cf.Created.Time, created)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	var inImage []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == "liberator" {
			if inImage, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := files["liberator"]
	if h == nil || h.Typeflag != tar.TypeReg {
		t.Fatalf("the layer has no file /liberator; it has %v", keys(files))
	}
	if h.Mode&0o755 != 0o755 || h.Uid != 0 {
		t.Errorf("/liberator: mode %o uid %d, want 0755 owned by root (executable by 65532)", h.Mode, h.Uid)
	}
	if p := files["etc/passwd"]; p == nil {
		t.Errorf("the layer has no /etc/passwd for user 65532")
	}
	if want, _ := os.ReadFile(bin); !bytes.Equal(inImage, want) {
		t.Errorf("/liberator in the image (%d bytes) is not the binary built (%d bytes)", len(inImage), len(want))
	}

	// The binary in the image runs, and says which version it is.
	extracted := filepath.Join(dir, "extracted-liberator")
	if err := os.WriteFile(extracted, inImage, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("/liberator version: %v\n%s", err, out)
	}
	if want := "liberator v9.8.7-test (commit 0123abc, built 2026-01-02T03:04:05Z"; !strings.Contains(string(out), want) {
		t.Errorf("/liberator version printed %q, want it to contain %q", out, want)
	}

	// As an OCI image layout (podman load, ctr images import, skopeo).
	ldir := filepath.Join(dir, "layout")
	untar(t, o.out, ldir)
	idx, err := layout.ImageIndexFromPath(ldir)
	if err != nil {
		t.Fatalf("read as an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	m := im.Manifests[0]
	if m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type = %s, want %s", m.MediaType, types.OCIManifestSchema1)
	}
	if got := m.Annotations["org.opencontainers.image.ref.name"]; got != "v9.8.7-test" {
		t.Errorf("ref.name annotation = %q, want v9.8.7-test", got)
	}
	oimg, err := idx.Image(m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	oname, _ := oimg.ConfigName()
	dname, _ := img.ConfigName()
	if oname != dname {
		t.Errorf("the OCI layout and manifest.json name different configs: %s, %s", oname, dname)
	}

	// Reproducible: the same inputs give the same bytes.
	first := digestFile(t, o.out)
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	if second := digestFile(t, o.out); first != second {
		t.Errorf("two builds from the same inputs differ: %x, %x", first, second)
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
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
