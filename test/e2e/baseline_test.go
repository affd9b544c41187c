//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// seedDaemon runs the seed's main.py against the bed. The script reads its
// credentials with load_incluster_config; here that call is pointed at the
// bed's kubeconfig, and nothing else of the script changes. With fix, the
// one-word fix body=body is applied to its delete_node call.
func (e *env) seedDaemon(fix bool) (*exec.Cmd, string) {
	e.t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		e.t.Fatal("python3 is not installed (it comes with Debian's python3-kubernetes; see hack/apt-packages.txt)")
	}
	src, err := os.ReadFile(filepath.Join(e.root, "test/e2e/testdata/seed/main.py"))
	if err != nil {
		e.t.Fatal(err)
	}
	code := string(src)
	if fix {
		code = strings.Replace(code, "v1.delete_node(name, body)", "v1.delete_node(name, body=body)", 1)
	}
	dir := e.t.TempDir()
	script := filepath.Join(dir, "main.py")
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		e.t.Fatal(err)
	}
	boot := fmt.Sprintf(`import runpy, kubernetes.config as c
c.load_incluster_config = lambda: c.load_kube_config(config_file=%q)
runpy.run_path(%q, run_name="__main__")
`, e.c.Kubeconfig(), script)
	logPath := filepath.Join(dir, "seed.log")
	logf, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	// Debian's python3-kubernetes lives in the system interpreter.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	cmd := exec.Command(py, "-u", "-c", boot)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	return cmd, logPath
}

// Scenario 11: the baselines beside scenario 1. Kubernetes alone never moves
// mysql-0 (bounded wait); the seed's daemon as published crashes at its
// first node deletion; with the one-word fix it moves mysql-0 after the
// NotReady delay, its polls, and pod garbage collection.
func TestBaselines(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	rto := map[string]string{}
	record := func(name, v string) { mu.Lock(); rto[name] = v; mu.Unlock() }
	// Subtests run in parallel; the parent's cleanup runs after all of them.
	t.Cleanup(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "scenario 1, power-off to mysql-0 Ready elsewhere, side by side:\n")
		for _, k := range []string{"liberator (defaults)", "Kubernetes alone", "seed daemon as published", "seed daemon with body=body"} {
			fmt.Fprintf(&b, "  %-28s %s\n", k, rto[k])
		}
		t.Log(b.String())
		fmt.Print(b.String())
	})
	t.Run("Liberator", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, bed.Options{Workers: 2})
		e.startController("liberator-a", labConfig(""))
		_, _, d := e.failover("scenario 11: liberator beside the baselines", 3*time.Minute)
		record("liberator (defaults)", fmt.Sprintf("%.1f s", d.Seconds()))
	})
	t.Run("KubernetesAlone", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, bed.Options{Workers: 2})
		old := e.deployMySQL()
		before, _ := e.pod("default", "mysql-0")
		if err := e.c.PowerOff(old); err != nil {
			t.Fatal(err)
		}
		wait := 150 * time.Second
		time.Sleep(wait)
		p, err := e.pod("default", "mysql-0")
		if err != nil || p.UID != before.UID || p.Spec.NodeName != old {
			t.Fatalf("Kubernetes alone moved mysql-0 (%v): the baseline is wrong", err)
		}
		t.Logf("Kubernetes alone: mysql-0 still on the dead node %s after %s", old, wait)
		record("Kubernetes alone", fmt.Sprintf("never (still on the dead node after %s)", wait))
		fmt.Printf("RESULT scenario=11 baseline=kubernetes-alone rto=never (still on the dead node after %s)\n", wait)
	})
	t.Run("SeedDaemonAsPublished", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, bed.Options{Workers: 2})
		old := e.deployMySQL()
		cmd, logPath := e.seedDaemon(false)
		if err := e.c.PowerOff(old); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var exitErr error
		select {
		case exitErr = <-done:
		case <-time.After(3 * time.Minute):
			t.Fatal("the seed daemon as published did not crash within 3 minutes")
		}
		out, _ := os.ReadFile(logPath)
		if exitErr == nil || !strings.Contains(string(out), "delete_node") {
			t.Fatalf("the seed daemon exited with %v; output:\n%s", exitErr, out)
		}
		if _, err := e.kube.CoreV1().Nodes().Get(context.Background(), old, metav1.GetOptions{}); err != nil {
			t.Fatalf("node %s was deleted although the daemon crashed: %v", old, err)
		}
		t.Logf("the seed daemon as published crashed at its first node deletion:\n%s", tail(string(out), 6))
		record("seed daemon as published", "never (crashed: "+finalLine(string(out))+")")
		fmt.Printf("RESULT scenario=11 baseline=seed-as-published rto=never (crashed: %s)\n", finalLine(string(out)))
	})
	t.Run("SeedDaemonFixed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, bed.Options{Workers: 2})
		old := e.deployMySQL()
		e.seedDaemon(true)
		t0 := time.Now()
		if err := e.c.PowerOff(old); err != nil {
			t.Fatal(err)
		}
		// The node is deleted ~70 s after the failure; the attach-detach
		// controller then force-detaches the RWO volume only after its
		// 6-minute maxWaitForUnmountDuration.
		p := e.readyPod("default", "mysql-0", old, 11*time.Minute)
		d := time.Since(t0)
		t.Logf("seed daemon with body=body: mysql-0 Ready on %s %.1fs after power-off", p.Spec.NodeName, d.Seconds())
		record("seed daemon with body=body", fmt.Sprintf("%.1f s", d.Seconds()))
		fmt.Printf("RESULT scenario=11 baseline=seed-fixed rto_seconds=%.1f\n", d.Seconds())
	})
}

func finalLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
