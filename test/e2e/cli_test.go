//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/cli"
	"github.com/liberator-dev/liberator/test/e2e/bed"
)

// cliRun runs one liberator operator command against the bed as
// cluster-admin, as a process of the built binary (as an operator would; and
// a signal meant for this test process cannot reach it). The error is the
// command's one-line message.
func (e *env) cliRun(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, liberatorBinary(e.t, e.root), append([]string{"--kubeconfig", e.c.Kubeconfig()}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); exited {
		msg := strings.TrimSpace(errOut.String())
		if i := strings.LastIndex(msg, "\nliberator: "); i >= 0 {
			msg = msg[i+1:]
		}
		err = errors.New(strings.TrimPrefix(msg, "liberator: "))
	}
	e.t.Logf("$ liberator %s\n%s%s(error: %v)", strings.Join(args, " "), out.String(), errOut.String(), err)
	return out.String(), errOut.String(), err
}

// TestOperatorCLI runs the operator commands against the bed's real control
// plane with the controller running: join-command, status, bad input, an
// evacuation of mysql-0's node blocked by a PodDisruptionBudget and then
// allowed, readmit, and a drill with --simulate whose report must match the
// Takeover's timeline.
func TestOperatorCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bed.Options{Workers: 2, LeaseDurationSeconds: fastLease})
	// Two workers: one down is half of them, more than the default storm
	// guard (40%) allows.
	e.startController("liberator-cli", fastConfig("maxUnhealthy: 1\n"))
	first := e.deployMySQL()
	other := "worker-1"
	if first == other {
		other = "worker-2"
	}
	ctx := context.Background()

	// join-command: a valid bootstrap token Secret, and the CA hash of an
	// independent computation.
	out, _, err := e.cliRun("join-command", "--ttl", "30m")
	if err != nil {
		t.Fatalf("join-command: %v", err)
	}
	checkJoinCommand(t, e, strings.TrimSpace(out), 30*time.Minute)

	// status: every node, mysql-0 at risk on its node.
	out, _, err = e.cliRun("status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	row := tableRow(t, out, first)
	if row[1] != "True" || row[4] != "schedulable" || row[5] != "1" || row[6] != "-" {
		t.Errorf("status row of %s = %v, want Ready, schedulable, 1 stateful pod, no Takeover", first, row)
	}
	if len(strings.Split(strings.TrimSpace(out), "\n")) != 4 {
		t.Errorf("status lists %d lines, want a header and 3 nodes", len(strings.Split(strings.TrimSpace(out), "\n")))
	}
	out, _, err = e.cliRun("status", "-o", "json")
	var doc struct {
		APIVersion, Kind string
		Items            []cli.NodeStatusObject
	}
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc.Kind != "List" || len(doc.Items) != 3 ||
		doc.Items[0].Kind != cli.NodeStatusKind || doc.Items[0].APIVersion != "liberator.dev/v1alpha1" {
		t.Errorf("status -o json: %v, %s with %d items (%.200s)", err, doc.Kind, len(doc.Items), out)
	}
	// A script's question: how many stateful pods on the first node.
	out, _, err = e.cliRun("status", first, "-o", "jsonpath={.items[0].statefulPods[*].name}")
	if err != nil || strings.TrimSpace(out) != "mysql-0" {
		t.Errorf("status %s -o jsonpath={.items[0].statefulPods[*].name}: %q, %v; want mysql-0", first, out, err)
	}
	// The same question through kubectl, which finds the plugin
	// kubectl-liberator on the PATH and passes it its own flags.
	checkKubectlPlugin(t, e, first)
	// kubectl's flags reach the API server: as a user without RBAC the
	// command could not run (exit 3); a bad flag is a usage error (exit 2).
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"status", "--as", "liberator-e2e-nobody"}, cli.ExitCannotRun, "permission denied"},
		{[]string{"status", "--request-timeout", "soon"}, cli.ExitUsage, "--request-timeout"},
		{[]string{"status", "--no-such-flag"}, cli.ExitUsage, "unknown flag"},
	} {
		var errOut bytes.Buffer
		cmd := exec.Command(liberatorBinary(t, e.root), append([]string{"--kubeconfig", e.c.Kubeconfig()}, c.args...)...)
		cmd.Stderr = &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != c.code || !strings.Contains(errOut.String(), c.msg) {
			t.Errorf("liberator %s: %v, stderr %q; want exit %d with %q", strings.Join(c.args, " "), err, errOut.String(), c.code, c.msg)
		}
	}

	// Bad input: one line each, nothing changed.
	if _, _, err := e.cliRun("evacuate", "no-such-node"); err == nil || err.Error() != `node "no-such-node" not found (liberator status lists the nodes)` {
		t.Errorf("evacuate of an unknown node: %v", err)
	}
	// The command's earlier name, takeover, still runs it.
	if _, _, err := e.cliRun("takeover", "no-such-node"); err == nil || err.Error() != `node "no-such-node" not found (liberator status lists the nodes)` {
		t.Errorf("takeover (alias of evacuate) of an unknown node: %v", err)
	}
	cordon(t, e, other, true)
	if _, _, err := e.cliRun("evacuate", other); err == nil || !strings.Contains(err.Error(), "already cordoned by someone else") {
		t.Errorf("evacuate of a node cordoned by someone else: %v", err)
	}
	cordon(t, e, other, false)

	// An evacuation blocked by a PodDisruptionBudget fails within its
	// timeout, names the budget, and uncordons the node.
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "mysql", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: new(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mysql-sts"}},
		},
	}
	if _, err := e.kube.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("PodDisruptionBudget mysql observed", 30*time.Second, func() (bool, error) {
		b, err := e.kube.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "mysql", metav1.GetOptions{})
		return err == nil && b.Status.ObservedGeneration == b.Generation && b.Status.ExpectedPods == 1, err
	})
	out, _, err = e.cliRun("evacuate", first, "--dry-run")
	if err != nil || !strings.Contains(out, "blocks now: PodDisruptionBudget default/mysql") || e.node(first).Spec.Unschedulable {
		t.Errorf("dry run: %v; want the blocking budget named and the node left schedulable", err)
	}
	_, _, err = e.cliRun("evacuate", first, "--timeout", "8s")
	if err == nil || !strings.Contains(err.Error(), "blocked by PodDisruptionBudget default/mysql (minAvailable 1, 0 disruptions allowed) for pod default/mysql-0") ||
		!strings.HasSuffix(err.Error(), "node "+first+" uncordoned") || strings.Contains(err.Error(), "\n") {
		t.Errorf("evacuation blocked by a budget: %v", err)
	}
	if n := e.node(first); n.Spec.Unschedulable || n.Annotations[cli.PlannedTakeoverAnnotation] != "" {
		t.Errorf("%s left cordoned after a failed evacuation", first)
	}
	if p, _ := e.pod("default", "mysql-0"); p == nil || p.Spec.NodeName != first || p.DeletionTimestamp != nil {
		t.Errorf("mysql-0 disturbed by a blocked evacuation")
	}

	// With a budget that allows one disruption, the evacuation moves mysql-0.
	patch := []byte(`{"spec":{"minAvailable":null,"maxUnavailable":1}}`)
	if _, err := e.kube.PolicyV1().PodDisruptionBudgets("default").Patch(ctx, "mysql", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("PodDisruptionBudget mysql allows a disruption", 30*time.Second, func() (bool, error) {
		b, err := e.kube.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "mysql", metav1.GetOptions{})
		return err == nil && b.Status.DisruptionsAllowed == 1, err
	})
	before, _ := e.pod("default", "mysql-0")
	start := time.Now()
	out, _, err = e.cliRun("evacuate", first, "--timeout", "2m")
	if err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	t.Logf("evacuation of %s took %s", first, time.Since(start).Round(100*time.Millisecond))
	p, _ := e.pod("default", "mysql-0")
	if p == nil || p.UID == before.UID || p.Spec.NodeName != other || !podReady(p) {
		t.Fatalf("after the evacuation mysql-0 is %+v, want a new pod Ready on %s", p, other)
	}
	for _, want := range []string{"cordoned " + first, "evicted default/mysql-0", "default/mysql-0 Ready on " + other, "WorkloadsReady", "Evacuation of " + first + " done in", "liberator readmit " + first} {
		if !strings.Contains(out, want) {
			t.Errorf("evacuate output lacks %q", want)
		}
	}
	if n := e.node(first); !n.Spec.Unschedulable || n.Annotations[cli.PlannedTakeoverAnnotation] == "" {
		t.Errorf("%s not cordoned by the evacuation", first)
	}
	out, _, _ = e.cliRun("status")
	if row := tableRow(t, out, first); row[4] != "cordoned(takeover)" || row[5] != "0" {
		t.Errorf("status of %s after the evacuation: %v", first, row)
	}

	// readmit brings the node back.
	if out, _, err = e.cliRun("readmit", first); err != nil || !strings.Contains(out, "readmitted: uncordoned") {
		t.Fatalf("readmit: %v", err)
	}
	if n := e.node(first); n.Spec.Unschedulable || n.Annotations[cli.PlannedTakeoverAnnotation] != "" {
		t.Errorf("%s still cordoned after readmit", first)
	}

	// A drill on mysql-0's new node.
	drill(t, e, other, first)
}

// drill runs `liberator drill node --simulate` with the controller running,
// a TCP endpoint standing for MySQL, and checks the report against the
// Takeover.
func drill(t *testing.T, e *env, node, spare string) {
	dir := t.TempDir()
	req, done := filepath.Join(dir, "power-off"), filepath.Join(dir, "off")
	// The simulation command asks this test to power the node off through
	// the bed and waits until it has.
	command := "printf '%s' {node} > " + req + " && while [ ! -e " + done + " ]; do sleep 0.05; done"

	// A TCP endpoint that answers while mysql-0 is Ready on a powered node.
	svc := newToggleServer(t)
	svc.set(true)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if b, err := os.ReadFile(req); err == nil && len(b) > 0 {
				if _, err := os.Stat(done); err != nil {
					svc.set(false)
					if err := e.c.PowerOff(string(b)); err != nil {
						t.Errorf("power off %s: %v", b, err)
					}
					_ = os.WriteFile(done, nil, 0o644)
				}
				p, err := e.pod("default", "mysql-0")
				svc.set(err == nil && p.Spec.NodeName != "" && p.Spec.NodeName != node && p.DeletionTimestamp == nil && podReady(p))
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The pages go to the bed's directory (kept with LIBERATOR_BED_KEEP=1).
	report, page := filepath.Join(dir, "report.json"), filepath.Join(e.c.Dir(), "drill-"+node+".html")
	out, _, err := e.cliRun("drill", node, "--simulate", "--simulate-command", command, "--yes",
		"--probe", svc.addr, "--timeout", "2m", "--report-json", report, "--report-html", page)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if !strings.Contains(out, "Drill report for node "+node) {
		t.Errorf("no report printed")
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep cli.DrillReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	tks := e.takeovers(node)
	if len(tks) == 0 {
		t.Fatalf("no Takeover of %s", node)
	}
	tk := tks[len(tks)-1]
	if !rep.Complete || rep.Takeover != tk.Name || rep.Method != "simulate" {
		t.Fatalf("report: complete %v, takeover %q (want %q), method %s", rep.Complete, rep.Takeover, tk.Name, rep.Method)
	}
	if len(rep.Phases) == 0 || len(rep.Phases) > len(tk.Status.Timeline) {
		t.Fatalf("report has %d phases, the Takeover %d", len(rep.Phases), len(tk.Status.Timeline))
	}
	for i, p := range rep.Phases {
		tp := tk.Status.Timeline[i]
		if p.Phase != string(tp.Phase) || !p.Time.Equal(tp.Time.Time) || p.Reason != tp.Reason {
			t.Errorf("report phase %d = %s %s at %s; Takeover: %s %s at %s", i, p.Phase, p.Reason, p.Time, tp.Phase, tp.Reason, tp.Time)
		}
		if want := tp.Time.Sub(rep.TriggeredAt).Seconds(); p.SinceTriggerSeconds != want {
			t.Errorf("phase %s %.3fs after the trigger, Takeover says %.3fs", p.Phase, p.SinceTriggerSeconds, want)
		}
	}
	for _, m := range []struct {
		phase v1alpha1.Phase
		got   *float64
	}{{v1alpha1.PhaseDetected, rep.DetectedSeconds}, {v1alpha1.PhaseFenced, rep.FencedSeconds}, {v1alpha1.PhaseReleased, rep.ReleasedSeconds}, {v1alpha1.PhaseWorkloadsReady, rep.WorkloadsReadySeconds}} {
		pt := tk.PhaseTime(m.phase)
		if pt == nil || m.got == nil || *m.got != pt.Sub(rep.TriggeredAt).Seconds() {
			t.Errorf("%s: report %v, Takeover %v", m.phase, m.got, pt)
		}
	}
	if len(rep.Pods) != 1 || rep.Pods[0].Name != "mysql-0" || rep.Pods[0].To != spare || rep.Pods[0].ObservedReadySeconds == nil {
		t.Fatalf("report pods %+v, want mysql-0 Ready on %s", rep.Pods, spare)
	}
	for _, mp := range tk.Status.MovedPods {
		if mp.Name == "mysql-0" && mp.ReadyTime != nil && (rep.Pods[0].ReadyTime == nil || !rep.Pods[0].ReadyTime.Equal(mp.ReadyTime.Time)) {
			t.Errorf("pod ready time %v, Takeover says %s", rep.Pods[0].ReadyTime, mp.ReadyTime)
		}
	}
	pr := rep.Probe
	if pr == nil || pr.DowntimeSeconds == nil || *pr.DowntimeSeconds <= 0 || *pr.DowntimeSeconds > *rep.AllPodsReadySeconds+2 {
		t.Errorf("probe %+v, want a downtime up to the pod's return (%.1fs)", pr, *rep.AllPodsReadySeconds)
	}
	t.Logf("drill of %s: detected %.1fs, fenced %.1fs, released %.1fs, mysql-0 Ready %.1fs, downtime %.1fs after the trigger",
		node, *rep.DetectedSeconds, *rep.FencedSeconds, *rep.ReleasedSeconds, *rep.AllPodsReadySeconds, *pr.DowntimeSeconds)

	// The node's timeline, and readmit refused while the Takeover is open.
	out, _, err = e.cliRun("status", node)
	if err != nil || !strings.Contains(out, "Takeover "+tk.Name+": open") || !strings.Contains(out, "default/mysql-0") {
		t.Errorf("status %s: %v", node, err)
	}
	checkPictures(t, e, node, tk.Name, page, svc.addr)
	checkViewers(t, e, node, tk.Name)
	_, _, err = e.cliRun("readmit", node)
	if err == nil || !strings.Contains(err.Error(), "not readmitting "+node) || !strings.Contains(err.Error(), "Takeover "+tk.Name+" is still open") {
		t.Errorf("readmit during an open Takeover: %v", err)
	}
}

// checkPictures checks the drill's page and `status NODE -o html|svg`
// drawn from the bed's real Takeover, and keeps them in the bed's directory.
func checkPictures(t *testing.T, e *env, node, takeover, page, probe string) {
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatalf("drill --report-html: %v", err)
	}
	for _, want := range []string{"<svg", "Takeover " + takeover, "probe " + probe, "default/mysql-0", "client-visible downtime"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the drill's page %s has no %q", page, want)
		}
	}
	for _, f := range []string{"html", "svg"} {
		out, _, err := e.cliRun("status", node, "-o", f)
		if err != nil || !strings.Contains(out, "Takeover "+takeover) || !strings.Contains(out, "default/mysql-0") || !strings.Contains(out, "detection ") {
			t.Errorf("status %s -o %s: %v", node, f, err)
			continue
		}
		if f == "svg" {
			d := xml.NewDecoder(strings.NewReader(out))
			for {
				if _, err := d.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Errorf("status -o svg is not well-formed XML: %v", err)
					break
				}
			}
		}
		if err := os.WriteFile(filepath.Join(e.c.Dir(), "status-"+node+"."+f), []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// checkJoinCommand checks the printed kubeadm join command: its token's
// Secret and its CA hash, computed again here from the kubeconfig's CA.
func checkJoinCommand(t *testing.T, e *env, line string, ttl time.Duration) {
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "kubeadm" || f[1] != "join" || f[3] != "--token" || f[5] != "--discovery-token-ca-cert-hash" {
		t.Fatalf("join command %q", line)
	}
	cfg, err := clientcmd.LoadFromFile(e.c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	if want := strings.TrimPrefix(cluster.Server, "https://"); f[2] != want {
		t.Errorf("join address %s, want %s", f[2], want)
	}
	caPEM := cluster.CertificateAuthorityData
	if len(caPEM) == 0 {
		if caPEM, err = os.ReadFile(cluster.CertificateAuthority); err != nil {
			t.Fatal(err)
		}
	}
	certs, err := certutil.ParseCertsPEM(caPEM)
	if err != nil || len(certs) != 1 {
		t.Fatalf("bed CA: %d certs, %v", len(certs), err)
	}
	sum := sha256.Sum256(certs[0].RawSubjectPublicKeyInfo)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if _, err := exec.LookPath("openssl"); err == nil {
		// The seed's pipeline (pkey instead of rsa, which also takes EC keys).
		cmd := exec.Command("sh", "-c", "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* //'")
		cmd.Stdin = bytes.NewReader(caPEM)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		if o := "sha256:" + strings.TrimSpace(string(out)); o != want {
			t.Fatalf("openssl says %s, crypto/x509 %s", o, want)
		}
	}
	if f[6] != want {
		t.Errorf("CA hash %s, want %s", f[6], want)
	}
	id, secret, ok := strings.Cut(f[4], ".")
	if !ok {
		t.Fatalf("token %q", f[4])
	}
	s, err := e.kube.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) string { return bootstrapsecrets.GetData(s, k) }
	if s.Type != corev1.SecretTypeBootstrapToken || get(bootstrapapi.BootstrapTokenIDKey) != id || get(bootstrapapi.BootstrapTokenSecretKey) != secret ||
		get(bootstrapapi.BootstrapTokenUsageAuthentication) != "true" || get(bootstrapapi.BootstrapTokenUsageSigningKey) != "true" ||
		get(bootstrapapi.BootstrapTokenExtraGroupsKey) != cli.DefaultNodeTokenGroup {
		t.Errorf("token Secret %s: type %s, data %v", s.Name, s.Type, s.Data)
	}
	left, expired := bootstrapsecrets.GetExpiration(s, time.Now())
	if expired || left < ttl-time.Minute || left > ttl {
		t.Errorf("token expires in %s, want about %s", left, ttl)
	}
}

// tableRow returns the fields of the table line of name.
func tableRow(t *testing.T, table, name string) []string {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row %s in\n%s", name, table)
	return nil
}

func cordon(t *testing.T, e *env, node string, on bool) {
	t.Helper()
	patch := []byte(`{"spec":{"unschedulable":false}}`)
	if on {
		patch = []byte(`{"spec":{"unschedulable":true}}`)
	}
	if _, err := e.kube.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// toggleServer is a TCP endpoint on loopback that accepts connections while
// it is on: a stand-in for a Service whose one backend moves.
type toggleServer struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	l    net.Listener
}

func newToggleServer(t *testing.T) *toggleServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &toggleServer{t: t, addr: addr}
	t.Cleanup(func() { s.set(false) })
	return s
}

func (s *toggleServer) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.l == nil:
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			s.t.Errorf("probe endpoint: %v", err)
			return
		}
		s.l = l
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	case !on && s.l != nil:
		s.l.Close()
		s.l = nil
	}
}

// checkKubectlPlugin runs `kubectl liberator status NODE -o jsonpath=...`
// with the pinned kubectl, the plugin (a link named kubectl-liberator to
// the built binary) alone on the PATH, and kubectl's own --kubeconfig,
// and checks kubectl lists the plugin.
func checkKubectlPlugin(t *testing.T, e *env, node string) {
	t.Helper()
	kubectl, err := e.KubectlPath()
	if err != nil {
		t.Fatalf("kubectl liberator: %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(liberatorBinary(t, e.root), filepath.Join(dir, "kubectl-liberator")); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+dir, "KUBECONFIG="+e.c.Kubeconfig())
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		t.Logf("$ kubectl %s\n%s%s(error: %v)", strings.Join(args, " "), out.String(), errOut.String(), err)
		return out.String(), err
	}
	out, err := run("plugin", "list", "--name-only")
	if err != nil || !strings.Contains(out, "kubectl-liberator") {
		t.Errorf("kubectl plugin list: %q, %v; want kubectl-liberator", out, err)
	}
	out, err = run("liberator", "status", node, "-o", "jsonpath={.items[0].statefulPods[*].name}")
	if err != nil || strings.TrimSpace(out) != "mysql-0" {
		t.Errorf("kubectl liberator status %s -o jsonpath={.items[0].statefulPods[*].name}: %q, %v; want mysql-0", node, out, err)
	}
	out, err = run("liberator", "status", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}")
	if err != nil || len(strings.Fields(out)) != 3 || !strings.Contains(out, node) {
		t.Errorf("kubectl liberator status -o jsonpath (every node's name): %q, %v; want 3 names with %s", out, err, node)
	}
}
