// Command chart packages the Helm chart charts/liberator as the release
// publishes it (`make chart`): `helm package` with the chart version and
// appVersion taken from the build's version (git describe), into
// DIR/liberator-VERSION.tgz, and, with -push, `helm push` of that package
// to an OCI registry (oci://REGISTRY/PATH), where it is an OCI artifact
// with Helm's media types.
//
//	go -C hack/chart run . -helm HELM -chart charts/liberator -out bin/chart -version $(git describe --tags --always --dirty) [-push oci://ghcr.io/liberator-dev/charts]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	helm := flag.String("helm", "helm", "the helm binary")
	chart := flag.String("chart", "charts/liberator", "the chart directory")
	out := flag.String("out", "bin/chart", "the directory the package is written to")
	version := flag.String("version", "", "the build's version (git describe); one that is not vMAJOR.MINOR.PATCH[...] becomes 0.0.0-VERSION")
	push := flag.String("push", "", "an OCI repository (oci://HOST/PATH) to push the package to; empty pushes nothing")
	plainHTTP := flag.Bool("plain-http", false, "push over HTTP (a local test registry)")
	flag.Parse()
	if *version == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: chart -version VERSION [-helm HELM] [-chart DIR] [-out DIR] [-push oci://HOST/PATH]")
		os.Exit(2)
	}
	pkg, err := Package(*helm, *chart, *out, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	fmt.Println(pkg)
	if *push != "" {
		if err := Push(*helm, pkg, *push, *plainHTTP); err != nil {
			fmt.Fprintln(os.Stderr, "chart:", err)
			os.Exit(1)
		}
	}
}

var (
	semverRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$`)
	leadingRE = regexp.MustCompile(`^0[0-9]+$`)
)

// ChartVersion turns a `git describe` into the SemVer 2 version Helm
// requires of a chart, as hack/krew does for the krew manifest but without
// the "v": v1.2.3 is 1.2.3, v1.2.3-4-gabcdef0 is 1.2.3-4-gabcdef0, and an
// untagged build (git describe --always) such as 72f6cde-dirty is
// 0.0.0-72f6cde-dirty. A pre-release identifier made only of digits may not
// start with 0 in SemVer, so the commit 0124080 becomes 0.0.0-g0124080 (the
// "g" git describe itself puts before a commit).
func ChartVersion(describe string) string {
	v := strings.TrimPrefix(describe, "v")
	if semverRE.MatchString(v) {
		return v
	}
	ids := strings.Split(describe, ".")
	for i, id := range ids {
		if leadingRE.MatchString(id) {
			ids[i] = "g" + id
		}
	}
	return "0.0.0-" + strings.Join(ids, ".")
}

// Package runs `helm package` on the chart with the version and appVersion
// of the build, into out, and returns the package's path
// (out/liberator-VERSION.tgz). The appVersion is the build's version as
// given: it is the default image tag, the tag `make image` gives the image.
func Package(helm, chart, out, describe string) (string, error) {
	version := ChartVersion(describe)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(helm, "package", chart, "--version", version, "--app-version", describe, "--destination", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("helm package %s --version %s --app-version %s: %v\n%s", chart, version, describe, err, b)
	}
	pkg := filepath.Join(out, "liberator-"+version+".tgz")
	if _, err := os.Stat(pkg); err != nil {
		return "", fmt.Errorf("helm package wrote no %s: %v", pkg, err)
	}
	return pkg, nil
}

// Push runs `helm push PACKAGE REPOSITORY`.
func Push(helm, pkg, repository string, plainHTTP bool) error {
	if !strings.HasPrefix(repository, "oci://") {
		return fmt.Errorf("-push %q: want an OCI repository, oci://HOST/PATH", repository)
	}
	args := []string{"push", pkg, repository}
	if plainHTTP {
		args = append(args, "--plain-http")
	}
	if b, err := exec.Command(helm, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
