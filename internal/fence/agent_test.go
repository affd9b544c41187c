package fence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

// fakeAgent is a stand-in for a ClusterLabs fence agent, for the protocol
// tests: it speaks the stdin key=value protocol, keeps the power state in a
// file, logs its stdin and arguments, and misbehaves on request.
const fakeAgent = `#!/bin/sh
dir=$(dirname "$0")
input=$(cat)
printf '%s\n--\n' "$input" >> "$dir/stdin.log"
echo "args:$*" >> "$dir/args.log"
action=; password=; delay=; lie=; method=
while IFS='=' read -r k v; do
	case "$k" in
	action) action=$v ;;
	password) password=$v ;;
	delay) delay=$v ;;
	lie) lie=$v ;;
	method) method=$v ;;
	esac
done <<EOF
$input
EOF
if [ "$action" = metadata ]; then
	echo '<?xml version="1.0" ?>'
	echo '<resource-agent name="fence_fake" shortdesc="fake">'
	echo '<parameters>'
	for p in action ip ipport username password verbose lanplus cipher method delay lie plug; do
		echo "	<parameter name=\"$p\" unique=\"0\" required=\"0\"><content type=\"string\"/></parameter>"
	done
	echo '</parameters></resource-agent>'
	exit 0
fi
[ -n "$delay" ] && sleep "$delay"
if [ "$password" != "s3cret" ]; then
	echo "2026-01-01 00:00:00,000 ERROR: Unable to establish session: password $password rejected" >&2
	exit 1
fi
state=$(cat "$dir/power" 2>/dev/null || echo 1)
case "$action" in
off)
	[ -z "$lie" ] && echo 0 > "$dir/power"
	echo "Success: Powered OFF" ;;
on)
	echo 1 > "$dir/power"
	echo "Success: Powered ON" ;;
reboot)
	if [ "$method" != onoff ]; then echo "Failed: reboot without method=onoff" >&2; exit 1; fi
	echo 1 > "$dir/power"
	echo "Success: Rebooted" ;;
status)
	if [ "$state" = 1 ]; then echo "Status: ON"; exit 0; fi
	echo "Status: OFF"; exit 2 ;;
*)
	echo "unknown action $action" >&2; exit 1 ;;
esac
`

func installFakeAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "fence_fake")
	if err := os.WriteFile(p, []byte(fakeAgent), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func secretsOf(m map[string]map[string]string) SecretGetter {
	return func(_ context.Context, name string) (map[string][]byte, error) {
		s, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("secrets %q: %w", name, ErrSecretNotFound)
		}
		out := map[string][]byte{}
		for k, v := range s {
			out[k] = []byte(v)
		}
		return out, nil
	}
}

func agentClass(path string) config.FenceClass {
	return config.FenceClass{
		Name: "ipmi", Provider: config.ProviderFenceAgent, Agent: path, Action: config.ActionOff,
		Address: "127.0.0.1", Port: 9001, CredentialsSecret: "bmc",
		Options: map[string]string{"lanplus": "1", "cipher": "3"},
	}
}

var testSecrets = secretsOf(map[string]map[string]string{
	"bmc":   {"username": "admin", "password": "s3cret", "token": "tok-123456"},
	"wrong": {"username": "admin", "password": "hunter2-wrong"},
	"nopw":  {"username": "admin"},
})

func newAgent(t *testing.T, fc config.FenceClass) *Agent {
	t.Helper()
	f, err := Factory{Secrets: testSecrets, Namespace: "tkr-system"}.For(fc)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Agent)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestAgentOffIsConfirmedByStatus(t *testing.T) {
	path := installFakeAgent(t)
	a := newAgent(t, agentClass(path))
	r, err := a.Fence(context.Background(), Target{Node: "worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Done || !r.PowerOff || r.Unsafe {
		t.Fatalf("result %+v, want done with power off", r)
	}
	if !strings.Contains(r.Output, "Success: Powered OFF") || !strings.Contains(r.Output, "status read OFF back") {
		t.Fatalf("output %q", r.Output)
	}
	log := readFile(t, filepath.Join(filepath.Dir(path), "stdin.log"))
	runs := strings.Split(strings.TrimSuffix(log, "--\n"), "--\n")
	// metadata, off, status
	if len(runs) != 3 {
		t.Fatalf("agent ran %d times, want metadata, off, status:\n%s", len(runs), log)
	}
	wantOff := "action=off\nip=127.0.0.1\nipport=9001\nusername=admin\npassword=s3cret\ncipher=3\nlanplus=1\nverbose=1\n"
	if runs[1] != wantOff {
		t.Fatalf("stdin of off:\n%s\nwant:\n%s", runs[1], wantOff)
	}
	if !strings.HasPrefix(runs[2], "action=status\n") {
		t.Fatalf("second call %q, want a status", runs[2])
	}
	// Nothing on the command line.
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(filepath.Dir(path), "args.log"))), "\n") {
		if l != "args:" {
			t.Fatalf("agent got arguments %q; parameters belong on stdin", l)
		}
	}
	// Fencing again is idempotent.
	if r, err := a.Fence(context.Background(), Target{Node: "worker-1"}); err != nil || !r.Done {
		t.Fatalf("second fence: %+v, %v", r, err)
	}
}

func TestAgentStatusAndPowerOn(t *testing.T) {
	path := installFakeAgent(t)
	a := newAgent(t, agentClass(path))
	ctx := context.Background()
	if on, err := a.Status(ctx, Target{Node: "n"}); err != nil || !on {
		t.Fatalf("status = %v, %v; want on", on, err)
	}
	if _, err := a.Fence(ctx, Target{Node: "n"}); err != nil {
		t.Fatal(err)
	}
	if on, err := a.Status(ctx, Target{Node: "n"}); err != nil || on {
		t.Fatalf("status after fence = %v, %v; want off", on, err)
	}
	if err := a.PowerOn(ctx, Target{Node: "n"}); err != nil {
		t.Fatal(err)
	}
	if on, err := a.Status(ctx, Target{Node: "n"}); err != nil || !on {
		t.Fatalf("status after power on = %v, %v; want on", on, err)
	}
}

func TestAgentRebootUsesOnOff(t *testing.T) {
	path := installFakeAgent(t)
	fc := agentClass(path)
	fc.Action = config.ActionReboot
	r, err := newAgent(t, fc).Fence(context.Background(), Target{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Done || !r.PowerOff || !strings.Contains(r.Output, "read OFF back") {
		t.Fatalf("reboot result %+v", r)
	}
	if log := readFile(t, filepath.Join(filepath.Dir(path), "stdin.log")); !strings.Contains(log, "action=reboot\n") || !strings.Contains(log, "method=onoff\n") {
		t.Fatalf("stdin:\n%s", log)
	}
}

func TestAgentPerNodeAddress(t *testing.T) {
	path := installFakeAgent(t)
	fc := agentClass(path)
	fc.Nodes = map[string]config.NodeFence{"worker-2": {Address: "127.0.0.2", Port: 9002, Options: map[string]string{"cipher": "17"}}}
	if _, err := newAgent(t, fc).Status(context.Background(), Target{Node: "worker-2"}); err != nil {
		t.Fatal(err)
	}
	log := readFile(t, filepath.Join(filepath.Dir(path), "stdin.log"))
	if !strings.Contains(log, "ip=127.0.0.2\nipport=9002\n") || !strings.Contains(log, "cipher=17\n") {
		t.Fatalf("stdin:\n%s", log)
	}
}

func TestAgentWrongPasswordIsRedacted(t *testing.T) {
	path := installFakeAgent(t)
	fc := agentClass(path)
	fc.CredentialsSecret = "wrong"
	a := newAgent(t, fc)
	for name, call := range map[string]func() error{
		"fence":  func() error { _, err := a.Fence(context.Background(), Target{Node: "n"}); return err },
		"status": func() error { _, err := a.Status(context.Background(), Target{Node: "n"}); return err },
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s with a wrong password succeeded", name)
		}
		msg := err.Error()
		if strings.Contains(msg, "hunter2-wrong") {
			t.Fatalf("%s: the password leaked: %s", name, msg)
		}
		if !strings.Contains(msg, "password *** rejected") || !strings.Contains(msg, "exit 1") {
			t.Fatalf("%s: error %q does not give the agent's reason", name, msg)
		}
	}
}

func TestRedact(t *testing.T) {
	got := Redact("user admin password s3cret token tok-123456 s3cret-ish", "s3cret", "tok-123456", "")
	want := "user admin password *** token *** ***-ish"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Longest first, so a secret containing another is hidden whole.
	if got := Redact("abc-long", "abc", "abc-long"); got != "***" {
		t.Fatalf("got %q", got)
	}
}

func TestAgentTimeoutKillsTheAgent(t *testing.T) {
	path := installFakeAgent(t)
	fc := agentClass(path)
	fc.Options["delay"] = "30"
	a := newAgent(t, fc)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Fence(ctx, Target{Node: "n"})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	if took > 5*time.Second {
		t.Fatalf("fence took %s after a 700ms timeout: the agent (or its sleep) was not killed", took)
	}
}

func TestAgentOffNotConfirmedFails(t *testing.T) {
	path := installFakeAgent(t)
	fc := agentClass(path)
	fc.Options["lie"] = "1" // off says success, status keeps saying ON
	a := newAgent(t, fc)
	a.ConfirmTimeout, a.PollInterval = 600*time.Millisecond, 50*time.Millisecond
	r, err := a.Fence(context.Background(), Target{Node: "n"})
	if err == nil || r.Done {
		t.Fatalf("fence without OFF read back succeeded: %+v", r)
	}
	if !strings.Contains(err.Error(), "status did not read OFF") || !strings.Contains(err.Error(), "not proven off") {
		t.Fatalf("error %q", err)
	}
}

func TestAgentBadInput(t *testing.T) {
	path := installFakeAgent(t)
	cases := []struct {
		name string
		edit func(*config.FenceClass)
		want string
	}{
		{"not installed", func(fc *config.FenceClass) { fc.Agent = "fence_liberator_test_missing" }, "fence agent fence_liberator_test_missing is not installed"},
		{"not executable", func(fc *config.FenceClass) { fc.Agent = filepath.Join(filepath.Dir(path), "stdin.log") }, "is not installed or not executable"},
		{"unknown option", func(fc *config.FenceClass) { fc.Options["lanpls"] = "1" }, "does not know the option(s) lanpls"},
		{"malformed option", func(fc *config.FenceClass) { fc.Options["cipher"] = "3\npassword=x" }, `option "cipher" is malformed`},
		{"missing secret", func(fc *config.FenceClass) { fc.CredentialsSecret = "nothere" }, "credentials Secret tkr-system/nothere not found: create it with the keys username and password"},
		{"secret without password", func(fc *config.FenceClass) { fc.CredentialsSecret = "nopw" }, "has no key password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.WriteFile(filepath.Join(filepath.Dir(path), "stdin.log"), nil, 0o644)
			fc := agentClass(path)
			tc.edit(&fc)
			_, err := newAgent(t, fc).Fence(context.Background(), Target{Node: "n"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if log := readFile(t, filepath.Join(filepath.Dir(path), "stdin.log")); strings.Contains(log, "action=off") {
				t.Fatalf("the agent was asked to fence despite bad input:\n%s", log)
			}
		})
	}
}

func TestNoSecretAccess(t *testing.T) {
	path := installFakeAgent(t)
	f, err := For(agentClass(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fence(context.Background(), Target{Node: "n"}); err == nil || !strings.Contains(err.Error(), "no Secret access") {
		t.Fatalf("error = %v", err)
	}
}

func TestCleanAndSummarize(t *testing.T) {
	raw := "/usr/sbin/fence_ipmilan:5: DeprecationWarning: 'pipes' is deprecated\n  from pipes import quote\n" +
		"2026-11-22 01:00:29,722 INFO: Executing: /usr/bin/ipmitool -I lanplus -H 127.0.0.1 -P [set] chassis power status\n\n" +
		"2026-11-22 01:00:29,783 DEBUG: 1  Error: Unable to establish IPMI v2 / RMCP+ session\n\n" +
		"2026-11-22 01:00:29,784 ERROR: Failed: Unable to obtain correct plug status or plug is not available\n"
	c := clean(raw)
	if strings.Contains(c, "pipes") || strings.Contains(c, "2026-11-22") {
		t.Fatalf("clean left noise: %q", c)
	}
	want := "DEBUG: 1  Error: Unable to establish IPMI v2 / RMCP+ session; ERROR: Failed: Unable to obtain correct plug status or plug is not available"
	if got := summarize(c); got != want {
		t.Fatalf("summary %q\nwant    %q", got, want)
	}
	if got := summarize(clean("2026-11-22 01:00:29,722 INFO: Executing: x\nSuccess: Powered OFF\n")); got != "Success: Powered OFF" {
		t.Fatalf("summary %q", got)
	}
}
