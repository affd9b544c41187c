package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// runAgent runs path with stdin; it returns the exit code and the combined
// output. The agent and every process it starts (ipmitool, ...) are killed
// when ctx ends.
func runAgent(ctx context.Context, path, stdin string) (int, string, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = strings.NewReader(stdin)
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PYTHONWARNINGS=ignore")
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		if exit.ExitCode() >= 0 {
			return exit.ExitCode(), out.String(), nil
		}
	}
	if err != nil {
		return -1, out.String(), err
	}
	return 0, out.String(), nil
}

// lookAgent finds an agent binary: an absolute path as is, a name in PATH,
// /usr/sbin or /sbin (where distributions install the fence agents).
func lookAgent(agent string) (string, error) {
	if filepath.IsAbs(agent) {
		if st, err := os.Stat(agent); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("fence agent %s is not installed or not executable", agent)
		}
		return agent, nil
	}
	if p, err := exec.LookPath(agent); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, agent)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("fence agent %s is not installed (not in PATH, /usr/sbin or /sbin): install it in the controller's image (Debian and Ubuntu: the fence-agents package)", agent)
}

// agentParameters returns the parameter names the agent declares in its
// metadata; they are read once per binary.
func agentParameters(ctx context.Context, path string) (map[string]bool, error) {
	paramsMu.Lock()
	defer paramsMu.Unlock()
	if p, ok := paramsCache[path]; ok {
		return p, nil
	}
	code, out, err := runAgent(ctx, path, "action=metadata\n")
	if err != nil {
		return nil, fmt.Errorf("cannot read the agent's metadata: %v", err)
	}
	if code != 0 {
		return nil, fmt.Errorf("the agent's metadata action failed (exit %d): %s", code, orNothing(summarize(clean(out))))
	}
	p := map[string]bool{}
	for _, m := range parameterRE.FindAllStringSubmatch(out, -1) {
		p[m[1]] = true
	}
	if len(p) > 0 {
		p["action"] = true
	}
	paramsCache[path] = p
	return p, nil
}

var (
	paramsMu    sync.Mutex
	paramsCache = map[string]map[string]bool{}
	parameterRE = regexp.MustCompile(`<parameter\s+name="([A-Za-z0-9_-]+)"`)
)

// redact replaces every secret value in s with ***, longest first.
func redact(s string, secrets []string) string {
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, v := range sorted {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// Redact replaces every secret value in s with ***.
func Redact(s string, secrets ...string) string { return redact(s, secrets) }

var logPrefix = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ `)

// clean drops the Python interpreter's warnings and the agents' log
// timestamps, and trims blank lines.
func clean(s string) string {
	var out []string
	skipIndented := false
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \r\t")
		if skipIndented && strings.HasPrefix(l, " ") {
			continue
		}
		skipIndented = false
		if strings.Contains(l, "DeprecationWarning") || strings.Contains(l, "SyntaxWarning") {
			skipIndented = true
			continue
		}
		l = logPrefix.ReplaceAllString(l, "")
		if strings.TrimSpace(l) == "" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// summarize shortens cleaned output to one line: the error lines when
// there are any, else the last lines.
func summarize(s string) string {
	lines := strings.Split(s, "\n")
	var picked []string
	for _, l := range lines {
		ll := strings.ToLower(l)
		if strings.Contains(ll, "error") || strings.Contains(ll, "fail") || strings.Contains(ll, "timed out") ||
			strings.Contains(ll, "denied") || strings.Contains(ll, "unable") {
			picked = append(picked, strings.TrimSpace(l))
		}
	}
	if len(picked) == 0 {
		for _, l := range lines {
			if strings.HasPrefix(l, "INFO: Executing:") || strings.HasPrefix(l, "DEBUG:") {
				continue // the agent's trace: only kept in the full output
			}
			if t := strings.TrimSpace(l); t != "" {
				picked = append(picked, t)
			}
		}
		if len(picked) > 3 {
			picked = picked[len(picked)-3:]
		}
	}
	return keep(strings.Join(picked, "; "))
}

// keep bounds a string kept in a status or an error.
func keep(s string) string {
	if len(s) <= maxKept {
		return s
	}
	return s[:maxKept-3] + "..."
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
