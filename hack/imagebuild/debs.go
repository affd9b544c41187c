package main

// The fence-agents variant's files come from Debian packages: the packages
// named in a list (fence-agents.packages) and the closure of their
// Depends and Pre-Depends, less the packages the list excludes (those
// needed only by dpkg's maintainer scripts, which never run in the
// image, and the Python libraries of agents other than fence_ipmilan).
// apt resolves the versions (the build machine's candidates), `apt-get
// download` fetches each .deb, whose SHA-256 is checked against apt's
// index, and `dpkg-deb --fsys-tarfile` unpacks it; the SBOM names every
// package with its version and the .deb's SHA-256. The same .deb files
// give the same image.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// debPackage is one Debian package of the image.
type debPackage struct {
	Name, Version, Arch string
	DebianVersion       string // the release, for the purl's distro: 12
	SHA256              string // of the .deb
	File                string // the .deb
	depends             []string
}

// packageList is the list file: roots (with or without their
// dependencies) and exclusions.
type packageList struct {
	roots    []string
	noDeps   map[string]bool
	excluded map[string]string // name -> why
}

// readPackageList reads lines "NAME", "NAME nodeps" and "exclude NAME
// WHY..."; # starts a comment.
func readPackageList(file string) (packageList, error) {
	l := packageList{noDeps: map[string]bool{}, excluded: map[string]string{}}
	f, err := os.Open(file)
	if err != nil {
		return l, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line, comment, _ := strings.Cut(s.Text(), "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case fields[0] == "exclude" && len(fields) == 2:
			l.excluded[fields[1]] = strings.TrimSpace(comment)
		case len(fields) == 1 || (len(fields) == 2 && fields[1] == "nodeps"):
			l.roots = append(l.roots, fields[0])
			l.noDeps[fields[0]] = len(fields) == 2
		default:
			return l, fmt.Errorf("%s:%d: want NAME, NAME nodeps or exclude NAME, got %q", file, n, line)
		}
	}
	if len(l.roots) == 0 {
		return l, fmt.Errorf("%s: no packages", file)
	}
	return l, s.Err()
}

// aptShow reads the candidate versions of packages from apt's index.
func aptShow(names []string) (map[string]debPackage, map[string]string, error) {
	out, err := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, names...)...).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("apt-cache show %s: %w (a virtual package? then name a package that provides it in the list; or apt's lists are missing: apt-get update)", strings.Join(names, " "), err)
	}
	pkgs, files := map[string]debPackage{}, map[string]string{}
	for _, para := range strings.Split(string(out), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, " ") {
				continue // a continuation (Description)
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["Package"] == "" {
			continue
		}
		p := debPackage{Name: fields["Package"], Version: fields["Version"], Arch: fields["Architecture"], SHA256: fields["SHA256"]}
		if p.Version == "" || len(p.SHA256) != 64 || fields["Filename"] == "" {
			return nil, nil, fmt.Errorf("apt-cache show %s: no Version, Filename or SHA256", p.Name)
		}
		for _, k := range []string{"Pre-Depends", "Depends"} {
			if fields[k] != "" {
				p.depends = append(p.depends, strings.Split(fields[k], ",")...)
			}
		}
		pkgs[p.Name], files[p.Name] = p, path.Base(fields["Filename"])
	}
	for _, n := range names {
		if _, ok := pkgs[n]; !ok {
			return nil, nil, fmt.Errorf("apt-cache show %s: no candidate (a virtual package? then name a package that provides it in the list)", n)
		}
	}
	return pkgs, files, nil
}

// resolve computes the package set: the roots and the closure of their
// dependencies (for each dependency, the first alternative, unless one is
// already in the set or excluded), less the exclusions.
func resolve(l packageList) ([]debPackage, map[string]string, error) {
	chosen := map[string]debPackage{}
	files := map[string]string{}
	queued := map[string]bool{}
	var level []string
	for _, n := range l.roots {
		if _, out := l.excluded[n]; !out && !queued[n] {
			queued[n] = true
			level = append(level, n)
		}
	}
	for len(level) > 0 {
		got, f, err := aptShow(level)
		if err != nil {
			return nil, nil, err
		}
		var next []string
		for _, n := range level {
			chosen[n], files[n] = got[n], f[n]
		}
		for _, n := range level {
			if l.noDeps[n] {
				continue
			}
			for _, group := range got[n].depends {
				var alts []string
				for _, a := range strings.Split(group, "|") {
					if fs := strings.Fields(a); len(fs) > 0 {
						alts = append(alts, strings.TrimSuffix(fs[0], ":any"))
					}
				}
				satisfied := len(alts) == 0
				for _, a := range alts {
					_, out := l.excluded[a]
					satisfied = satisfied || queued[a] || out
				}
				if !satisfied {
					queued[alts[0]] = true
					next = append(next, alts[0])
				}
			}
		}
		level = next
	}
	var names []string
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	var pkgs []debPackage
	for _, n := range names {
		pkgs = append(pkgs, chosen[n])
	}
	return pkgs, files, nil
}

// debianRelease is the build machine's Debian release (VERSION_ID).
func debianRelease() (string, error) {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_ID="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", errors.New("/etc/os-release has no VERSION_ID")
}

// fetchPackages resolves the list and downloads every package into debDir
// (kept there as a cache: a .deb already there with apt's SHA-256 is not
// fetched again).
func fetchPackages(listFile, debDir string, platforms []string) ([]debPackage, error) {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return nil, fmt.Errorf("the fence-agents variant is built from Debian packages on a Debian machine: dpkg --print-architecture: %w", err)
	}
	arch := strings.TrimSpace(string(out))
	if len(platforms) != 1 || platforms[0] != "linux/"+arch {
		return nil, fmt.Errorf("-platforms: the fence-agents variant is built for the build machine's platform only, linux/%s (got %s)", arch, strings.Join(platforms, ","))
	}
	if debDir == "" {
		return nil, errors.New("-deb-dir is required for the fence-agents variant")
	}
	release, err := debianRelease()
	if err != nil {
		return nil, err
	}
	l, err := readPackageList(listFile)
	if err != nil {
		return nil, err
	}
	pkgs, files, err := resolve(l)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, err
	}
	for i := range pkgs {
		p := &pkgs[i]
		p.DebianVersion = release
		p.File = filepath.Join(debDir, files[p.Name])
		if sha256Of(p.File) == p.SHA256 {
			continue
		}
		tmp, err := os.MkdirTemp(debDir, "download-")
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		dl := exec.CommandContext(ctx, "apt-get", "download", p.Name+"="+p.Version)
		dl.Dir, dl.WaitDelay = tmp, 10*time.Second
		out, err := dl.CombinedOutput()
		cancel()
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("apt-get download %s=%s: %v\n%s", p.Name, p.Version, err, out)
		}
		got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
		if len(got) != 1 || sha256Of(got[0]) != p.SHA256 {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("apt-get download %s=%s: not one .deb with apt's SHA-256 %s (%v)", p.Name, p.Version, p.SHA256, got)
		}
		err = os.Rename(got[0], p.File)
		os.RemoveAll(tmp)
		if err != nil {
			return nil, err
		}
	}
	return pkgs, nil
}

func sha256Of(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mergedUsr are the top-level directories that Debian (since bookworm)
// keeps in /usr, with symbolic links at the top.
var mergedUsr = []string{"bin", "lib", "lib64", "sbin"}

// usrPath maps a package's path to the merged-/usr layout: bin/x ->
// usr/bin/x; "" for the top-level directories themselves.
func usrPath(name string) string {
	name = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/"), "/")
	for _, d := range mergedUsr {
		if name == d {
			return ""
		}
		if strings.HasPrefix(name, d+"/") {
			return "usr/" + name
		}
	}
	return name
}

// debRootfs unpacks the packages into one layer: their files as dpkg
// would install them (owned by root, modes kept), in the merged-/usr
// layout. A file that two packages ship is an error.
func debRootfs(pkgs []debPackage, created time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	seen := map[string]string{} // path -> package
	for _, d := range mergedUsr {
		seen[d] = "(merged /usr)"
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeSymlink, Linkname: "usr/" + d, Mode: 0o777, ModTime: created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, p := range pkgs {
		data, err := exec.Command("dpkg-deb", "--fsys-tarfile", p.File).Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", p.File, err)
		}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.File, err)
			}
			n := usrPath(h.Name)
			if n == "" {
				continue
			}
			if prev, ok := seen[n]; ok {
				if h.Typeflag == tar.TypeDir {
					continue
				}
				return nil, fmt.Errorf("%s: /%s is also in %s", p.Name, n, prev)
			}
			seen[n] = p.Name
			hdr := &tar.Header{Name: n, Typeflag: h.Typeflag, Mode: h.Mode, Size: h.Size, ModTime: created, Format: tar.FormatPAX}
			switch h.Typeflag {
			case tar.TypeDir:
				hdr.Name += "/"
			case tar.TypeSymlink:
				hdr.Linkname = h.Linkname
			case tar.TypeLink:
				hdr.Linkname = usrPath(h.Linkname)
			case tar.TypeReg:
			default:
				return nil, fmt.Errorf("%s: /%s has tar type %c, which a package should not ship", p.Name, n, h.Typeflag)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := io.Copy(tw, tr); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
