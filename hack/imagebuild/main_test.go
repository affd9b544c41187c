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

// buildBinary builds a command of the module for linux as `make build`
// does, with the given -X flags.
func buildBinary(t *testing.T, out, pkg, xflags string) {
	t.Helper()
	build := exec.Command("go", "build", "-trimpath", "-o", out, "-ldflags", "-s -w "+xflags, pkg)
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

// TestImage builds the liberator and liberator-agent binaries as `make
// build` does, writes the image tarball, and checks it as a container
// runtime would read it: the config (entrypoint, user, labels, platform),
// the layer (the binaries at /liberator and /liberator-agent, executable),
// both archive formats, and that both binaries in the image run and report
// the version they were built with.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a linux binary; running it needs linux")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "liberator")
	buildBinary(t, bin, "./cmd/liberator",
		"-X "+module+"/internal/cli.Version=v9.8.7-test -X "+module+"/internal/cli.Commit=0123abc -X "+module+"/internal/cli.Date=2026-01-02T03:04:05Z")
	agentBin := filepath.Join(dir, "liberator-agent")
	buildBinary(t, agentBin, "./cmd/liberator-agent", "-X main.Version=v9.8.7-test -X main.Commit=0123abc -X main.Date=2026-01-02T03:04:05Z")

	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := options{binary: bin, agent: agentBin, out: filepath.Join(dir, "image.tar"), tag: "registry.example/liberator:v9.8.7-test",
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
	contents := map[string][]byte{}
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
		if h.Typeflag == tar.TypeReg {
			if contents[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p := files["etc/passwd"]; p == nil {
		t.Errorf("the layer has no /etc/passwd for user 65532")
	}
	checkBinary(t, files, contents, bin, []string{"version"}, "liberator v9.8.7-test (commit 0123abc, built 2026-01-02T03:04:05Z")
	checkBinary(t, files, contents, agentBin, []string{"--version"}, "liberator-agent version v9.8.7-test (commit 0123abc, built 2026-01-02T03:04:05Z")

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

// checkBinary checks that the layer holds the binary built at built as
// /NAME (its base name), executable by the image's user, and that it runs
// from there and reports the version it was built with.
func checkBinary(t *testing.T, files map[string]*tar.Header, contents map[string][]byte, built string, args []string, wantOut string) {
	t.Helper()
	name := filepath.Base(built)
	h := files[name]
	if h == nil || h.Typeflag != tar.TypeReg {
		t.Errorf("the layer has no file /%s; it has %v", name, keys(files))
		return
	}
	if h.Mode&0o755 != 0o755 || h.Uid != 0 {
		t.Errorf("/%s: mode %o uid %d, want 0755 owned by root (executable by 65532)", name, h.Mode, h.Uid)
	}
	inImage := contents[name]
	if want, _ := os.ReadFile(built); !bytes.Equal(inImage, want) {
		t.Errorf("/%s in the image (%d bytes) is not the binary built (%d bytes)", name, len(inImage), len(want))
	}
	extracted := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(extracted, inImage, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, args...).CombinedOutput()
	if err != nil {
		t.Errorf("/%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	} else if !strings.Contains(string(out), wantOut) {
		t.Errorf("/%s %s printed %q, want it to contain %q", name, strings.Join(args, " "), out, wantOut)
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

// The image without the agent's binary would leave the agent DaemonSet
// with nothing to run: -agent-binary is required.
func TestAgentBinaryRequired(t *testing.T) {
	err := run(options{binary: "liberator", out: filepath.Join(t.TempDir(), "image.tar")})
	if err == nil || !strings.Contains(err.Error(), "-agent-binary is required") {
		t.Errorf("run without -agent-binary: %v, want -agent-binary is required", err)
	}
}
