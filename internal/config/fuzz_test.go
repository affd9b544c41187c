package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// seedFiles are the valid files of the seed corpus: the shipped configs and
// testdata/valid.
func seedFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/valid files: %v", err)
	}
	files := map[string][]byte{}
	for _, p := range append(shippedConfigs(t), paths...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	return files
}

// brokenSeeds are files each refused for one reason.
var brokenSeeds = []string{
	"",
	"# only a comment\n",
	"---\n",
	"null\n",
	"{}\n",
	"[]\n",
	"apiVersion",
	head + "MaxConcurrent: 5\n",
	head + "---\n" + head,
	head + "healthyDelay: 0\n",
	head + "maxUnhealthy: [1]\n",
	head + "fencing: {classes: [{name: x, provider: fence_agent, agent: fence_ipmilan, address: 10.0.0.1}]}\n",
	head + "fencing: {classes: [{name: x, provider: wait, wait: {safeTime: soon}}]}\n",
	head + "fencing: {classes: [{name: x, provider: redfish, nodes: {w1: {Address: a}}}]}\n",
	head + "x: &a [*a]\n",
	head + "a: &a {b: &b [*a, *a, *a]}\nc: [*b, *b, *b, *b]\n",
	head + "leaderElection: {leaseDuration: 1s, renewDeadline: 2s}\n",
	head + "metricsAddr: \"8080\"\n",
	head + "unhealthyAfter: 10s\nmaxConc",
	"\xff\xfe" + head,
	head + "maxConcurrent: 99999999999999999999999\n",
	head + "dryRun: !!binary aGVsbG8=\n",
	head + "? [a, b]\n: c\n",
}

// maxLoadTime tells a hang from a slow Parse: not a speed target (the
// largest files take a few seconds, ten under the race detector on a busy
// machine), but far below the minutes a quadratic path takes on them.
const maxLoadTime = time.Minute

// FuzzLoad feeds the loader any bytes: it never panics, never takes long,
// accepts only configurations that validate and read back the same, and
// refuses with a short message whose every problem names its field or says
// what is wrong with the file as a whole.
func FuzzLoad(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkLoad(t, b)
	})
}

// checkLoad parses b and checks the outcome; it returns the refusal, or nil.
func checkLoad(t *testing.T, b []byte) *Error {
	t.Helper()
	c := Default()
	start := time.Now()
	err := Parse(b, c)
	if d := time.Since(start); d > maxLoadTime {
		t.Fatalf("Parse took %s", d)
	}
	if err == nil {
		checkAccepted(t, c)
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("refusal %T is not an *Error: %v", err, err)
	}
	if again := Parse(b, Default()); again == nil || again.Error() != err.Error() {
		t.Fatalf("refused twice differently:\n%v\n%v", err, again)
	}
	e.File = "/etc/liberator/config.yaml"
	msg := e.Error()
	if len(msg) >= 2048 || strings.Count(msg, "\n")+1 >= 12 {
		t.Fatalf("refusal of %d bytes, %d lines:\n%s", len(msg), strings.Count(msg, "\n")+1, msg)
	}
	for _, p := range e.Problems {
		if !namesItsField(p) {
			t.Fatalf("problem %q names no field and is not about the file as a whole", p)
		}
	}
	return e
}

// fileProblems begin the messages of the problems of the file as a whole.
var fileProblems = []string{
	"the file ", "a second YAML document", "apiVersion and kind: missing", "unknown field ", "merge keys",
	"a key must be a name",
}

func namesItsField(p error) bool {
	switch p := p.(type) {
	case *FieldError:
		return p.Field != ""
	case *Problem:
		if p.Field != "" {
			return true
		}
		if strings.HasSuffix(p.Msg, "(the file is not valid YAML)") {
			return true
		}
		for _, f := range fileProblems {
			if strings.HasPrefix(p.Msg, f) {
				return true
			}
		}
	}
	return false
}

// checkAccepted checks that an accepted configuration is valid and that
// written out (as the chart and normalize-manifests write it) it reads
// back the same.
func checkAccepted(t *testing.T, c *Config) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted, but Validate says: %v", err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("accepted, but cannot be written: %v", err)
	}
	back := Default()
	if err := Parse(out, back); err != nil {
		t.Fatalf("accepted, but written out it is refused: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("accepted, but written out it reads back differently:\n%s", out)
	}
}
