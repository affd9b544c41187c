package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/liberator-dev/liberator/test/e2e/ipmisim"
)

// restrictedEnv makes the test binary the launcher of a restricted
// process (see restrictedExec) instead of running tests.
const restrictedEnv = "IMAGEBUILD_RESTRICTED_EXEC"

func init() {
	if os.Getenv(restrictedEnv) == "1" {
		if err := restrictedExec(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "restricted exec:", err)
			os.Exit(126)
		}
	}
}

// restrictedExec runs argv in the directory root as the controller's
// container runs there (the chart's securityContext): user and group
// 65532 with no supplementary groups, no capabilities (none effective,
// permitted, inheritable, ambient, nor in the bounding set), no_new_privs
// (allowPrivilegeEscalation: false); the caller has mounted root
// read-only (readOnlyRootFilesystem). It runs as root, is the process
// `unshare` started, and waits for argv, passing its stdio and exit code.
func restrictedExec(root string, argv []string) error {
	runtime.LockOSThread()
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(last)))
	if err != nil {
		return err
	}
	// Inheritable set empty; effective and permitted stay until setuid
	// (the child needs CAP_SYS_CHROOT and CAP_SETUID) and are cleared by
	// it, as the user is not root.
	hdr := struct{ version, pid uint32 }{0x20080522, 0}
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capget: %w", e)
	}
	data[0].inheritable, data[1].inheritable = 0, 0
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	const prCapbsetDrop, prSetNoNewPrivs, prCapAmbient, prCapAmbientClearAll = 24, 38, 47, 4
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prCapAmbient, prCapAmbientClearAll, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", e)
	}
	for c := 0; c <= n; c++ {
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prCapbsetDrop, uintptr(c), 0); e != 0 {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %d): %w", c, e)
		}
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", e)
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/nonroot"}
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir: "/", Env: env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532, Groups: []uint32{}}},
	})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", argv[0], root, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	os.Exit(ws.ExitStatus())
	return nil
}

// requireTool fails (CI) or skips the test when a tool is missing.
func requireTool(t *testing.T, why string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this test must run)", why)
	}
	t.Skipf("%s; skipped (it fails when CI=true)", why)
}

func lookPath(bin string) bool {
	_, err := exec.LookPath(bin)
	return err == nil
}

// TestFenceAgentsVariant builds the fence-agents image from Debian
// packages (downloaded by apt-get into the user's cache, checked against
// apt's SHA-256), checks it (go-containerregistry's validator; the SBOM:
// CycloneDX 1.6, every package with its version, purl and the .deb's
// SHA-256; reproducible), unpacks its layers into a root directory, and
// runs the image's own fence_ipmilan from there in the restricted
// security context the chart gives the controller (user 65532, no
// capabilities, no_new_privs, read-only root, no writable /tmp) against a
// real BMC simulator (ipmi_sim), as the fence-agent provider does:
// parameters on stdin; status, off, status, on.
func TestFenceAgentsVariant(t *testing.T) {
	requireTool(t, "the fence-agents variant is built on Debian (dpkg-deb, apt-get, apt-cache)", lookPath("dpkg-deb") && lookPath("apt-get") && lookPath("apt-cache"))
	requireTool(t, "running the image's fence_ipmilan needs ipmi_sim (Debian package openipmi) to talk to", lookPath(ipmisim.SimBinary))
	requireTool(t, "running the image's files in a restricted context needs root (chroot, mount namespace) and unshare, mount", os.Geteuid() == 0 && lookPath("unshare") && lookPath("mount"))

	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	debDir := filepath.Join(cache, "liberator", "debs")
	platform := "linux/" + runtime.GOARCH
	start := time.Now()
	pkgs, err := fetchPackages("fence-agents.packages", debDir, []string{platform})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("fence-agents variant: %d Debian packages resolved and in %s in %v\n", len(pkgs), debDir, time.Since(start).Round(time.Millisecond))
	names := map[string]debPackage{}
	for _, p := range pkgs {
		names[p.Name] = p
	}
	for _, want := range []string{"fence-agents", "python3", "python3-pexpect", "python3-pycurl", "ipmitool", "libc6", "libpython3.11-stdlib"} {
		if _, ok := names[want]; !ok && !(want == "libpython3.11-stdlib" && hasPrefix(names, "libpython3.")) {
			t.Errorf("the package set lacks %s", want)
		}
	}
	for _, not := range []string{"dpkg", "perl-base", "python3-boto3"} {
		if _, ok := names[not]; ok {
			t.Errorf("the package set has %s, which the list excludes or does not need", not)
		}
	}

	dir := t.TempDir()
	o := testOptions(t, dir)
	o.platforms = []string{platform}
	o.variant, o.packages = variantFenceAgents, pkgs
	o.tag += "-fence-agents"
	start = time.Now()
	res, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(o.out)
	fmt.Printf("fence-agents variant: built in %v, %d MB tar\n", time.Since(start).Round(time.Millisecond), st.Size()>>20)

	p, err := layout.FromPath(o.layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := p.ImageIndex()
	idx, err := root.ImageIndex(res.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("go-containerregistry's validator refuses the index: %v", err)
	}
	img, err := idx.Image(res.platforms[platform])
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/liberator" || cf.Architecture != runtime.GOARCH {
		t.Errorf("config: user %q entrypoint %q arch %s", cf.Config.User, cf.Config.Entrypoint, cf.Architecture)
	}

	// The SBOM names every package.
	raw, err := os.ReadFile(o.sbom)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateCycloneDX(t, raw); err != nil {
		t.Fatal(err)
	}
	bom := decodeSBOM(t, raw)
	debs := map[string]string{}
	for _, c := range *bom.Components {
		if strings.HasPrefix(c.PackageURL, "pkg:deb/debian/") && c.Hashes != nil && len(*c.Hashes) == 1 {
			debs[c.Name+"="+c.Version] = (*c.Hashes)[0].Value
			if want := "pkg:deb/debian/" + c.Name + "@" + strings.NewReplacer(":", "%3A", "+", "%2B").Replace(c.Version); !strings.HasPrefix(c.PackageURL, want+"?arch=") {
				t.Errorf("%s: purl %s, want %s?arch=...", c.Name, c.PackageURL, want)
			}
		}
	}
	for _, p := range pkgs {
		if got := debs[p.Name+"="+p.Version]; got != sha256File(t, p.File) {
			t.Errorf("the SBOM has %s %s with SHA-256 %q, the .deb's is %s", p.Name, p.Version, got, sha256File(t, p.File))
		}
	}
	if len(debs) != len(pkgs) {
		t.Errorf("the SBOM names %d Debian packages, the image has %d", len(debs), len(pkgs))
	}

	// Reproducible.
	o2 := o
	o2.out, o2.layoutDir, o2.sbom = filepath.Join(dir, "again.tar"), "", filepath.Join(dir, "again.json")
	res2, err := run(o2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.index != res.index {
		t.Errorf("two builds from the same packages give indexes %s and %s", res.index, res2.index)
	}

	// The image's files, as a runtime lays them out.
	rootfs := filepath.Join(dir, "rootfs")
	unpack(t, img, rootfs)
	for _, f := range []string{"usr/sbin/fence_ipmilan", "usr/bin/ipmitool", "usr/bin/python3", "liberator", "liberator-agent"} {
		if _, err := os.Stat(filepath.Join(rootfs, f)); err != nil {
			t.Errorf("the image has no /%s: %v", f, err)
		}
	}
	// Mount points a runtime provides (it mounts /proc and /dev).
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"null", "zero", "urandom", "random"} {
		if err := os.WriteFile(filepath.Join(rootfs, "dev", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The sandbox is what it claims: checked from inside with the image's
	// python3.
	out, err := restricted(t, rootfs, "", "/usr/bin/python3", "-c", `
import os, errno
s = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
for k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"):
    print(k, " ".join(s[k].split()))
for p in ("/probe", "/tmp/probe", "/home/nonroot/probe"):
    try:
        open(p, "w")
        print("wrote", p)
    except OSError as e:
        print("cannot write", p, errno.errorcode[e.errno])
`)
	if err != nil {
		t.Fatalf("python3 from the image, restricted: %v\n%s", err, out)
	}
	for _, want := range []string{"Uid 65532 65532 65532 65532", "Gid 65532 65532 65532 65532", "Groups \n", "CapInh 0000000000000000", "CapPrm 0000000000000000",
		"CapEff 0000000000000000", "CapBnd 0000000000000000", "CapAmb 0000000000000000", "NoNewPrivs 1", "cannot write /probe EROFS", "cannot write /tmp/probe EROFS",
		"cannot write /home/nonroot/probe EROFS"} {
		if !strings.Contains(out+"\n", want) {
			t.Errorf("inside the restricted context: want %q in\n%s", want, out)
		}
	}

	// fence_ipmilan from the image against ipmi_sim, as the provider runs it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bmc, err := ipmisim.Start(ctx, ipmisim.Options{Name: "variant", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bmc.Stop() })
	params := func(action string) string {
		return fmt.Sprintf("action=%s\nip=%s\nipport=%d\nusername=%s\npassword=%s\nlanplus=1\ncipher=3\npower_wait=0\n", action, bmc.Addr, bmc.Port, bmc.User, bmc.Password)
	}
	for _, step := range []struct {
		action, want string
		power        bool
	}{
		{"status", "Status: ON", true},
		{"off", "Success: Powered OFF", false},
		{"status", "Status: OFF", false},
		{"on", "Success: Powered ON", true},
	} {
		start := time.Now()
		out, err := restricted(t, rootfs, params(step.action), "/usr/sbin/fence_ipmilan")
		fmt.Printf("fence_ipmilan -o %s from the image, restricted: %v, %q\n", step.action, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		wantErr := step.action == "status" && !step.power // status exits 2 for off
		if (err != nil) != wantErr || !strings.Contains(out, step.want) {
			t.Fatalf("fence_ipmilan -o %s: %v, printed %q; want %q", step.action, err, out, step.want)
		}
		if on, err := bmc.Power(); err != nil || on != step.power {
			t.Fatalf("after -o %s the BMC's power is on=%v (%v), want %v", step.action, on, err, step.power)
		}
	}
	if ev := bmc.Events(); len(ev) != 2 || !strings.HasSuffix(ev[0], "power 0") || !strings.HasSuffix(ev[1], "power 1") {
		t.Errorf("the BMC carried out %q, want one power off then one power on", ev)
	}
}

func hasPrefix(m map[string]debPackage, prefix string) bool {
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// restricted runs argv from rootfs in a new mount and PID namespace where
// rootfs is mounted read-only, with /proc and /dev/{null,zero,random,
// urandom}, through restrictedExec; stdin is given.
func restricted(t *testing.T, rootfs, stdin string, argv ...string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
r=$1; shift
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
for d in null zero random urandom; do mount --bind /dev/$d "$r/dev/$d"; done
mount -o remount,bind,ro "$r"
exec "$@"
`
	args := append([]string{"--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script, "sh", rootfs, self, rootfs}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), restrictedEnv+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err = cmd.Run()
	return b.String(), err
}

// unpack applies the image's layers to dir in order, as a runtime does
// (the images have no whiteouts), keeping modes and links.
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	eachLayerEntry(t, img, func(h *tar.Header, r io.Reader) {
		var err error
		name := filepath.Clean(strings.TrimPrefix(h.Name, "./"))
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			t.Fatalf("layer entry %q leaves the root", h.Name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			err = os.Chmod(p, mode)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600); err == nil {
				_, err = io.Copy(f, r)
				f.Close()
			}
			if err == nil {
				err = os.Chmod(p, mode)
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			err = os.Link(filepath.Join(dir, filepath.Clean(h.Linkname)), p)
		default:
			err = fmt.Errorf("unexpected tar type %c", h.Typeflag)
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	})
}
