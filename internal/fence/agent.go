package fence

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

// Exit codes of the fence agents' status action (the ClusterLabs fence agent
// API): 0 means on, 2 means off, anything else means the status is unknown.
const (
	agentStatusOn  = 0
	agentStatusOff = 2
)

// Agent fences through a ClusterLabs fence agent (fence_ipmilan,
// fence_redfish, fence_vbox, fence_aws, ...), run as a child process. The
// parameters go to the agent's stdin as key=value lines, never on its
// command line or in its environment, so no other process can read the
// password from /proc.
//
// Action off is proven by the agent's status action reading OFF back after
// the off succeeded. Action reboot uses the agent's own reboot, which with
// the default method (onoff) turns the power off, reads OFF back, and only
// then turns it on again; the agent exits non-zero when OFF was not seen.
type Agent struct {
	Class config.FenceClass
	// Creds reads a credentials Secret by name.
	Creds func(ctx context.Context, secret string) (Credentials, error)
	// PollInterval is the pause between status reads while waiting for OFF
	// (default 200ms); ConfirmTimeout bounds that wait (default 10s, and
	// never beyond the call's context).
	PollInterval, ConfirmTimeout time.Duration
}

var (
	_ Fencer    = (*Agent)(nil)
	_ Monitor   = (*Agent)(nil)
	_ PowerOner = (*Agent)(nil)
)

// maxOutput bounds what is kept of one agent run, and maxKept what a
// Result carries.
const (
	maxOutput = 64 << 10
	maxKept   = 2 << 10
)

// Fence turns the node off (or reboots it) and proves it.
func (a *Agent) Fence(ctx context.Context, t Target) (Result, error) {
	start := time.Now()
	s, err := a.session(ctx, t)
	if err != nil {
		return Result{}, err
	}
	action := a.Class.Action
	if action == "" {
		action = config.ActionOff
	}
	r, err := s.run(ctx, action)
	if err != nil {
		return Result{}, err
	}
	if r.code != 0 {
		return Result{}, s.failure(action, r)
	}
	if action == config.ActionReboot {
		out := fmt.Sprintf("%s reboot: %s (the agent turned the power off, read OFF back and turned it on again, in %s)",
			s.name, r.summary(), time.Since(start).Round(time.Millisecond))
		return Result{Done: true, PowerOff: true, Output: keep(out)}, nil
	}
	// The agent said the power is off; read it back until it says so too.
	reads, window, last, ok := confirmOff(ctx, a.ConfirmTimeout, a.PollInterval, func(cctx context.Context) (bool, string) {
		st, err := s.run(cctx, "status")
		switch {
		case err != nil:
			return false, err.Error()
		case st.code == agentStatusOff:
			return true, ""
		case st.code == agentStatusOn:
			return false, "status still reads ON"
		}
		return false, s.failure("status", st).Error()
	})
	if !ok {
		return Result{}, fmt.Errorf("%s off reported success (%s) but status did not read OFF within %s (%d reads; last: %s); the node is not proven off",
			s.name, r.summary(), window, reads, last)
	}
	out := fmt.Sprintf("%s off: %s; status read OFF back (%d read(s)); fenced in %s",
		s.name, r.summary(), reads, time.Since(start).Round(time.Millisecond))
	return Result{Done: true, PowerOff: true, Output: keep(out)}, nil
}

// Status runs the agent's status action.
func (a *Agent) Status(ctx context.Context, t Target) (bool, error) {
	s, err := a.session(ctx, t)
	if err != nil {
		return false, err
	}
	r, err := s.run(ctx, "status")
	if err != nil {
		return false, err
	}
	switch r.code {
	case agentStatusOn:
		return true, nil
	case agentStatusOff:
		return false, nil
	}
	return false, s.failure("status", r)
}

// PowerOn runs the agent's on action (the agent waits for ON itself).
func (a *Agent) PowerOn(ctx context.Context, t Target) error {
	s, err := a.session(ctx, t)
	if err != nil {
		return err
	}
	r, err := s.run(ctx, "on")
	if err != nil {
		return err
	}
	if r.code != 0 {
		return s.failure("on", r)
	}
	return nil
}

// agentSession is one node's resolved agent, parameters and secrets.
type agentSession struct {
	name, path string
	params     [][2]string // without action
	secrets    []string
}

type agentRun struct {
	code int
	out  string // cleaned and redacted
}

// session resolves the agent binary, the node's BMC settings and its
// credentials, and checks the options against the agent's metadata.
func (a *Agent) session(ctx context.Context, t Target) (*agentSession, error) {
	name := filepath.Base(a.Class.Agent)
	path, err := lookAgent(a.Class.Agent)
	if err != nil {
		return nil, err
	}
	b := a.Class.BMCFor(t.Node)
	s := &agentSession{name: name, path: path}
	if b.Address != "" {
		s.params = append(s.params, [2]string{"ip", b.Address})
	}
	if b.Port != 0 {
		s.params = append(s.params, [2]string{"ipport", strconv.Itoa(b.Port)})
	}
	if b.CredentialsSecret != "" {
		if a.Creds == nil {
			return nil, fmt.Errorf("%s for node %s: credentials Secret %s cannot be read: no Secret access configured", name, t.Node, b.CredentialsSecret)
		}
		c, err := a.Creds(ctx, b.CredentialsSecret)
		s.secrets = c.Secrets
		if err != nil {
			return nil, err
		}
		s.params = append(s.params, [2]string{"username", c.Username}, [2]string{"password", c.Password})
		if c.Password != "" {
			s.secrets = append(s.secrets, c.Password)
		}
	}
	known, err := agentParameters(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	knows := func(k string) bool { return len(known) == 0 || known[k] }
	opts := b.Options
	if _, ok := opts["verbose"]; !ok && knows("verbose") {
		// The agents' verbose output names the failing step (the BMC's own
		// error, a timeout); it masks the password, and liberator redacts
		// every secret besides.
		opts["verbose"] = "1"
	}
	if _, ok := opts["method"]; !ok && a.Class.Action == config.ActionReboot && known["method"] {
		opts["method"] = "onoff" // off, read OFF back, on
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k+opts[k], "\n\r\x00") || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%s: option %q is malformed: names and values must be one line, names without '='", name, k)
		}
		s.params = append(s.params, [2]string{k, opts[k]})
	}
	var unknown []string
	for _, p := range s.params {
		if !knows(p[0]) {
			unknown = append(unknown, p[0])
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s does not know the option(s) %s (see `%s -o metadata` for its parameters); fix the fence class %q",
			name, strings.Join(unknown, ", "), name, a.Class.Name)
	}
	return s, nil
}

// run runs the agent once with the given action.
func (s *agentSession) run(ctx context.Context, action string) (agentRun, error) {
	var in strings.Builder
	in.WriteString("action=" + action + "\n")
	for _, p := range s.params {
		in.WriteString(p[0] + "=" + p[1] + "\n")
	}
	budget := "the call's time"
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl).Round(100 * time.Millisecond).String()
	}
	code, raw, err := runAgent(ctx, s.path, in.String())
	out := clean(redact(raw, s.secrets))
	if err != nil {
		if ctx.Err() != nil {
			return agentRun{}, fmt.Errorf("%s %s did not finish within %s (BMC unreachable or slow?), killed: %s", s.name, action, budget, orNothing(summarize(out)))
		}
		return agentRun{}, fmt.Errorf("cannot run %s %s: %v", s.name, action, err)
	}
	return agentRun{code: code, out: out}, nil
}

// failure explains a non-zero exit.
func (s *agentSession) failure(action string, r agentRun) error {
	return fmt.Errorf("%s %s failed (exit %d%s): %s", s.name, action, r.code, exitMeaning(r.code), orNothing(summarize(r.out)))
}

func (r agentRun) summary() string { return orNothing(summarize(r.out)) }

// exitMeaning names the fence agents' exit codes (fencing.py).
func exitMeaning(code int) string {
	switch code {
	case 1:
		return ", generic error"
	case 2:
		return ", bad arguments or status OFF"
	case 3:
		return ", login denied"
	case 4:
		return ", connection lost"
	case 5:
		return ", timed out"
	case 6:
		return ", timed out waiting for ON"
	case 7:
		return ", timed out waiting for OFF"
	case 10:
		return ", password missing"
	case 11:
		return ", invalid privileges"
	}
	return ""
}

func orNothing(s string) string {
	if s == "" {
		return "no output"
	}
	return s
}
