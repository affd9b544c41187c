// Command krew writes liberator's krew plugin manifest (liberator.yaml)
// from the liberator binaries built for each platform, and checks it with
// krew's own tools.
//
// For each platform (linux and darwin, amd64 and arm64) it packs
// DIR/OS_ARCH/liberator, and the repository's LICENSE when there is one, into
// DIR/kubectl-liberator_VERSION_OS_ARCH.tar.gz (reproducible: fixed times and
// owners), and names the archive's URL under -base-url and its sha256 in
// the manifest. The manifest is then checked with krew v0.4.3, built from
// the Go module proxy at the version go.mod pins:
//
//   - validate-krew-manifest -skip-install: krew's structural validation
//     (name, semantic version, platforms, selectors, files, bin) and that no
//     two platforms select the same OS and architecture;
//   - `kubectl krew install --manifest M --archive A` for each platform
//     (KREW_OS, KREW_ARCH and a fresh KREW_ROOT): krew checks the archive's
//     sha256 against the manifest, unpacks it, runs the file operations and
//     links bin.
//
// Usage:
//
//	go -C hack/krew run . -dir bin/krew -version v0.3.0 [-base-url URL] [-license LICENSE]
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

// Platforms are the OS/architecture pairs the plugin is released for.
var Platforms = []struct{ OS, Arch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"},
}

const defaultBaseURL = "https://github.com/liberator-dev/liberator/releases/download"

func main() {
	dir := flag.String("dir", "", "directory holding OS_ARCH/liberator for every platform; the archives and liberator.yaml are written there")
	version := flag.String("version", "", "the build's version (git describe); a version that is not vMAJOR.MINOR.PATCH[...] becomes v0.0.0-VERSION")
	baseURL := flag.String("base-url", defaultBaseURL, "the archives are downloaded from BASE-URL/VERSION/ARCHIVE")
	license := flag.String("license", "", "a LICENSE file to pack beside the binary (none when empty)")
	check := flag.Bool("check", true, "check the manifest with krew's validate-krew-manifest and `kubectl krew install --archive` on every platform")
	flag.Parse()
	if *dir == "" || *version == "" {
		fmt.Fprintln(os.Stderr, "krew: -dir and -version are required")
		os.Exit(2)
	}
	path, archives, err := Generate(*dir, *version, *baseURL, *license)
	if err == nil && *check {
		err = Check(path, archives)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "krew:", err)
		os.Exit(1)
	}
	fmt.Printf("krew: %s (%d platforms)\n", path, len(archives))
}

var semverRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$`)

// leadingZeroRE is a pre-release identifier SemVer refuses: digits only,
// with a leading zero.
var leadingZeroRE = regexp.MustCompile(`^0[0-9]+$`)

// PluginVersion turns a `git describe` into the semantic version krew
// requires: v1.2.3 and v1.2.3-4-gabcdef stay; a bare commit (a repository
// without tags) such as 72f6cde-dirty becomes v0.0.0-72f6cde-dirty. A
// commit made only of digits with a leading zero, which SemVer (and so
// krew) refuses as is, gets the "g" git describe puts before a commit:
// 0124080 becomes v0.0.0-g0124080, as the chart's version (hack/chart).
func PluginVersion(describe string) string {
	if semverRE.MatchString(describe) {
		return describe
	}
	// Pre-release identifiers are separated by dots; 0124080-dirty is one
	// identifier, and not only digits.
	ids := strings.Split(strings.TrimPrefix(describe, "v"), ".")
	for i, id := range ids {
		if leadingZeroRE.MatchString(id) {
			ids[i] = "g" + id
		}
	}
	return "v0.0.0-" + strings.Join(ids, ".")
}

// ArchiveName is the release archive of one platform.
func ArchiveName(version, goos, arch string) string {
	return fmt.Sprintf("kubectl-liberator_%s_%s_%s.tar.gz", version, goos, arch)
}

// Generate packs the archives and writes dir/liberator.yaml. It returns
// the manifest's path and the archive of each platform ("os/arch").
func Generate(dir, describe, baseURL, license string) (string, map[string]string, error) {
	version := PluginVersion(describe)
	p := index.Plugin{
		TypeMeta:   metav1.TypeMeta{APIVersion: "krew.googlecontainertools.github.com/v1alpha2", Kind: "Plugin"},
		ObjectMeta: metav1.ObjectMeta{Name: "liberator"},
		Spec: index.PluginSpec{
			Version:          version,
			Homepage:         "https://github.com/liberator-dev/liberator",
			ShortDescription: "Fail over stateful pods from nodes that went down",
			Description: `liberator watches node heartbeats; when a node stops answering it fences
the node (powers it off through its BMC, or waits for the operator's word),
then releases its stateful pods and volumes so that they start elsewhere.
This plugin is its operator CLI: status of every node and Takeover,
planned evacuations, readmission, failover drills and join commands.`,
			Caveats: `The liberator controller must run in the cluster (see the installation guide).
Reading status needs the liberator-status-reader ClusterRole (or view, for Takeovers only).`,
		},
	}
	archives := map[string]string{}
	for _, pl := range Platforms {
		bin := filepath.Join(dir, pl.OS+"_"+pl.Arch, "liberator")
		name := ArchiveName(version, pl.OS, pl.Arch)
		archive := filepath.Join(dir, name)
		sum, err := pack(archive, bin, license)
		if err != nil {
			return "", nil, err
		}
		archives[pl.OS+"/"+pl.Arch] = archive
		files := []index.FileOperation{{From: "liberator", To: "."}}
		if license != "" {
			files = append(files, index.FileOperation{From: "LICENSE", To: "."})
		}
		p.Spec.Platforms = append(p.Spec.Platforms, index.Platform{
			URI:    strings.TrimSuffix(baseURL, "/") + "/" + version + "/" + name,
			Sha256: sum,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"os": pl.OS, "arch": pl.Arch,
			}},
			Files: files,
			Bin:   "liberator",
		})
	}
	b, err := yaml.Marshal(p)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "liberator.yaml")
	return path, archives, os.WriteFile(path, b, 0o644)
}

// pack writes a tar.gz of bin (as liberator, mode 0755) and license (as
// LICENSE) with fixed times and owners, and returns its sha256.
func pack(archive, bin, license string) (string, error) {
	f, err := os.Create(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(zw)
	add := func(src, name string, mode int64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	}
	if err := add(bin, "liberator", 0o755); err != nil {
		return "", err
	}
	if license != "" {
		if err := add(license, "LICENSE", 0o644); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Check runs krew's validate-krew-manifest on the manifest and installs
// it with krew from the local archive of every platform.
func Check(manifest string, archives map[string]string) error {
	tools, err := os.MkdirTemp("", "liberator-krew-tools")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tools)
	here, err := moduleDir()
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", tools, "sigs.k8s.io/krew/cmd/krew", "sigs.k8s.io/krew/cmd/validate-krew-manifest")
	build.Dir = here
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build krew: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(tools, "validate-krew-manifest"), "-manifest", manifest, "-skip-install").CombinedOutput(); err != nil {
		// klog's fatal exit prints every goroutine's stack: keep the message.
		msg, _, _ := strings.Cut(string(out), "\ngoroutine ")
		return fmt.Errorf("validate-krew-manifest %s: %v\n%s", manifest, err, msg)
	}
	for _, pl := range Platforms {
		archive, ok := archives[pl.OS+"/"+pl.Arch]
		if !ok {
			return fmt.Errorf("no archive for %s/%s", pl.OS, pl.Arch)
		}
		root, err := os.MkdirTemp("", "liberator-krew-root")
		if err != nil {
			return err
		}
		cmd := exec.Command(filepath.Join(tools, "krew"), "install", "--manifest", manifest, "--archive", archive)
		cmd.Env = append(os.Environ(), "KREW_ROOT="+root, "KREW_OS="+pl.OS, "KREW_ARCH="+pl.Arch)
		out, err := cmd.CombinedOutput()
		if err == nil {
			_, err = os.Stat(filepath.Join(root, "bin", "kubectl-liberator"))
		}
		os.RemoveAll(root)
		if err != nil {
			return fmt.Errorf("kubectl krew install --manifest %s --archive %s (%s/%s): %v\n%s", manifest, archive, pl.OS, pl.Arch, err, out)
		}
	}
	return nil
}

// moduleDir is this module's directory (where go.mod pins krew).
func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if !strings.HasSuffix(mod, filepath.Join("hack", "krew", "go.mod")) {
		return "", errors.New("run from hack/krew (go -C hack/krew run .): go.mod is " + mod)
	}
	return filepath.Dir(mod), nil
}
