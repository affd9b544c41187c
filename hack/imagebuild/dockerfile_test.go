package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The Dockerfile (used where a Docker engine exists) and this program (used
// where none does) must build the same image: same entrypoint and user, the
// version variables the binary really has, and the Go version of go.mod.
func TestDockerfileMatches(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	stages := regexp.MustCompile(`(?m)^FROM `).Split(df, -1)
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static:nonroot") && !strings.HasPrefix(final, "scratch") {
		t.Errorf("the final stage is FROM %s, want distroless/static:nonroot or scratch", strings.SplitN(final, "\n", 2)[0])
	}
	// Every image stage (all but the builder) runs the binary the same way,
	// and carries the agent's own binary where the agent DaemonSet runs it.
	for _, stage := range stages[2:] {
		from := strings.SplitN(stage, "\n", 2)[0]
		for _, want := range []string{`USER ` + user + "\n", `ENTRYPOINT ["` + entrypoint + `"]`, "COPY --from=build /out/liberator " + entrypoint + "\n",
			"COPY --from=build /out/liberator-agent " + agentPath + "\n"} {
			if !strings.Contains(stage, want) {
				t.Errorf("the Dockerfile stage FROM %s lacks %q", from, strings.TrimSpace(want))
			}
		}
	}

	version, err := os.ReadFile("../../internal/cli/version.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Version", "Commit", "Date"} {
		if !strings.Contains(df, "-X github.com/liberator-dev/liberator/internal/cli."+v+"=") {
			t.Errorf("the Dockerfile does not set internal/cli.%s with -ldflags -X", v)
		}
		if !regexp.MustCompile(`(?m)^\s*` + v + `\s+=`).Match(version) {
			t.Errorf("internal/cli/version.go has no variable %s for the Dockerfile's -X flag", v)
		}
	}
	agentMain, err := os.ReadFile("../../cmd/liberator-agent/main.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Version", "Commit", "Date"} {
		if !strings.Contains(df, "-X main."+v+"=") {
			t.Errorf("the Dockerfile does not set main.%s of cmd/liberator-agent with -ldflags -X", v)
		}
		if !regexp.MustCompile(`(?m)^\s*` + v + `\s+=`).Match(agentMain) {
			t.Errorf("cmd/liberator-agent/main.go has no variable %s for the Dockerfile's -X flag", v)
		}
	}
	if !strings.Contains(df, "-o /out/liberator-agent ./cmd/liberator-agent") {
		t.Errorf("the Dockerfile does not build ./cmd/liberator-agent into /out/liberator-agent")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile's build does not use %s", want)
		}
	}

	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	if want := `(?m)^FROM --platform=\$BUILDPLATFORM golang:` + regexp.QuoteMeta(string(m[1])) + `@sha256:[0-9a-f]{64} AS build$`; !regexp.MustCompile(want).MatchString(df) {
		t.Errorf("the Dockerfile's builder is not golang:%s pinned by digest (want a line matching %s)", m[1], want)
	}
}

// Every base of the Dockerfile is pinned by digest (name:tag@sha256:...),
// and each image stage records its base's name and digest in the
// org.opencontainers.image.base.* labels.
func TestDockerfileBasesPinned(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?m)^FROM (?:--platform=\S+ )?(\S+)(?: AS (\S+))?$`)
	pinned := regexp.MustCompile(`^([a-z0-9./-]+:[a-z0-9.-]+)@(sha256:[0-9a-f]{64})$`)
	stages := regexp.MustCompile(`(?m)^FROM `).Split(string(b), -1)[1:]
	matches := from.FindAllStringSubmatch(string(b), -1)
	if len(matches) != len(stages) || len(matches) < 3 {
		t.Fatalf("found %d FROM lines of %d stages", len(matches), len(stages))
	}
	for i, m := range matches {
		p := pinned.FindStringSubmatch(m[1])
		if p == nil {
			t.Errorf("FROM %s is not pinned as name:tag@sha256:<64 hex digits>", m[1])
			continue
		}
		if m[2] == "build" {
			continue // the builder: not a base of the image
		}
		for _, want := range []string{`org.opencontainers.image.base.name="` + p[1] + `"`, `org.opencontainers.image.base.digest="` + p[2] + `"`} {
			if !strings.Contains(stages[i], want) {
				t.Errorf("the stage FROM %s lacks the label %s", m[1], want)
			}
		}
	}
}

// The agent DaemonSets run the image's agent binary: the path they name is
// the one the image carries.
func TestAgentDaemonSetsRunTheImagesAgent(t *testing.T) {
	for _, f := range []string{"../../config/components/agent/daemonset.yaml", "../../charts/liberator/templates/agent.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := `command: ["` + agentPath + `"]`; !strings.Contains(string(b), want) {
			t.Errorf("%s does not run %s (want %q)", f, agentPath, want)
		}
	}
}
