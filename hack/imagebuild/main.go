// Command imagebuild writes the liberator container image without a
// container engine, the way ko does: it puts the static linux binaries at
// /liberator and /liberator-agent (the agent alone, which the agent
// DaemonSet runs) on an empty base (scratch) and sets the entrypoint, the
// non-root user 65532:65532 and the OCI labels, with go-containerregistry.
//
// The output is one tar file that is both an OCI image layout (oci-layout,
// index.json, blobs/) and a `docker save` archive (manifest.json), so that
// `docker load`, `podman load`, `ctr images import`, `kind load
// image-archive`, `skopeo copy oci-archive:...` and `crane push` all take
// it. The same inputs give the same bytes.
//
// The base is empty because the build must work offline: the Dockerfile's
// base, gcr.io/distroless/static:nonroot, would have to be pulled. What
// distroless adds that the controller can use is written into the image
// instead: /etc/passwd and /etc/group with the nonroot user, and the CA
// certificates of the build machine (-ca-certs) for TLS to BMCs.
//
//	go run -C hack/imagebuild . -binary $PWD/bin/linux_amd64/liberator \
//	    -agent-binary $PWD/bin/linux_amd64/liberator-agent -out $PWD/bin/liberator-image.tar \
//	    -tag ghcr.io/liberator-dev/liberator:v0.1.0 -version v0.1.0 -revision abc1234
package main

import (
	"archive/tar"
	"bytes"
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
)

type options struct {
	binary   string // static linux binary of cmd/liberator
	agent    string // static linux binary of cmd/liberator-agent
	out      string // tar file to write
	tag      string // image reference, for example ghcr.io/liberator-dev/liberator:v0.1.0
	version  string
	revision string
	created  time.Time
	arch     string
	caCerts  string // CA bundle to include; empty for none
}

func main() {
	var o options
	var created string
	flag.StringVar(&o.binary, "binary", "", "static linux binary to put at /liberator (required)")
	flag.StringVar(&o.agent, "agent-binary", "", "static linux binary of cmd/liberator-agent to put at /liberator-agent (required)")
	flag.StringVar(&o.out, "out", "bin/liberator-image.tar", "tar file to write")
	flag.StringVar(&o.tag, "tag", "ghcr.io/liberator-dev/liberator:dev", "image reference recorded in the archive")
	flag.StringVar(&o.version, "version", "dev", "org.opencontainers.image.version label")
	flag.StringVar(&o.revision, "revision", "unknown", "org.opencontainers.image.revision label")
	flag.StringVar(&created, "created", "", "creation time, RFC 3339 (default: $SOURCE_DATE_EPOCH, else the Unix epoch, for reproducible builds)")
	flag.StringVar(&o.arch, "arch", envOr("GOARCH", runtime.GOARCH), "architecture of the binary")
	flag.StringVar(&o.caCerts, "ca-certs", defaultCACerts(), "CA bundle to install as /etc/ssl/certs/ca-certificates.crt; empty for none")
	flag.Parse()
	var err error
	if o.created, err = parseCreated(created); err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
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

func run(o options) error {
	if o.binary == "" {
		return errors.New("-binary is required")
	}
	if o.agent == "" {
		return errors.New("-agent-binary is required: the agent DaemonSet runs /liberator-agent")
	}
	img, err := image(o)
	if err != nil {
		return err
	}
	if err := write(img, o); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("wrote %s: %s %s (%s)\n", o.out, o.tag, d, o.arch)
	return nil
}

// image builds the image: one layer on an empty base, OCI media types.
func image(o options) (v1.Image, error) {
	layerTar, err := rootfs(o)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.created}, CreatedBy: "hack/imagebuild: " + entrypoint + " " + agentPath, Comment: "liberator " + o.version},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.arch
	cf.Created = v1.Time{Time: o.created}
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.User = user
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":     "liberator",
		"org.opencontainers.image.version":   o.version,
		"org.opencontainers.image.revision":  o.revision,
		"org.opencontainers.image.created":   o.created.Format(time.RFC3339),
		"org.opencontainers.image.source":    "https://github.com/liberator-dev/liberator",
		"org.opencontainers.image.base.name": "scratch",
	}
	return mutate.ConfigFile(img, cf)
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

// rootfs is the image's only layer.
func rootfs(o options) ([]byte, error) {
	bin, err := readELF(o.binary)
	if err != nil {
		return nil, err
	}
	agentBin, err := readELF(o.agent)
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

// write stores the image as an OCI layout with a docker manifest.json, in
// one tar file.
func write(img v1.Image, o options) error {
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	dir, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return err
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

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

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
