package fence

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/liberator-dev/liberator/internal/config"
)

// Redfish fences through a BMC's Redfish service: the ComputerSystem's
// Reset action with ResetType ForceOff, then PowerState read back until it
// is Off. Action reboot adds a Reset On once Off was read. Authentication
// is HTTP Basic (no session is left open on the BMC).
type Redfish struct {
	Class config.FenceClass
	// Creds reads a credentials Secret by name.
	Creds func(ctx context.Context, secret string) (Credentials, error)
	// PollInterval and ConfirmTimeout bound the wait for PowerState Off
	// (defaults 200ms and 10s, never beyond the call's context).
	PollInterval, ConfirmTimeout time.Duration
}

var (
	_ Fencer    = (*Redfish)(nil)
	_ Monitor   = (*Redfish)(nil)
	_ PowerOner = (*Redfish)(nil)
)

// Fence forces the system off and reads PowerState Off back.
func (r *Redfish) Fence(ctx context.Context, t Target) (Result, error) {
	start := time.Now()
	s, err := r.connect(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	sys, err := s.system()
	if err != nil {
		return Result{}, err
	}
	was := sys.PowerState
	if was != schemas.OffPowerState {
		if _, err := sys.Reset(schemas.ForceOffResetType); err != nil {
			return Result{}, s.explain("Reset ForceOff", err)
		}
	}
	reads, window, last, ok := confirmOff(ctx, r.ConfirmTimeout, r.PollInterval, func(context.Context) (bool, string) {
		cur, err := s.powerState(sys.ODataID)
		if err != nil {
			return false, err.Error()
		}
		return cur == schemas.OffPowerState, fmt.Sprintf("PowerState %s", cur)
	})
	if !ok {
		return Result{}, fmt.Errorf("redfish %s: Reset ForceOff of %s accepted but PowerState did not read Off within %s (%d reads; last: %s); the node is not proven off",
			s.endpoint, sys.ODataID, window, reads, last)
	}
	out := fmt.Sprintf("redfish %s: system %s was %s; Reset ForceOff; PowerState read Off (%d read(s))", s.endpoint, sys.ODataID, orUnknown(was), reads)
	if was == schemas.OffPowerState {
		out = fmt.Sprintf("redfish %s: system %s already Off (PowerState read Off)", s.endpoint, sys.ODataID)
	}
	if r.Class.Action == config.ActionReboot {
		if _, err := sys.Reset(schemas.OnResetType); err != nil {
			return Result{}, fmt.Errorf("redfish %s: the system was proven Off, but Reset On failed: %w; the node stays off", s.endpoint, s.explain("Reset On", err))
		}
		out += "; Reset On"
	}
	out += fmt.Sprintf("; fenced in %s", time.Since(start).Round(time.Millisecond))
	return Result{Done: true, PowerOff: true, Output: keep(out)}, nil
}

// Status reads the system's PowerState; only Off counts as off.
func (r *Redfish) Status(ctx context.Context, t Target) (bool, error) {
	s, err := r.connect(ctx, t)
	if err != nil {
		return false, err
	}
	defer s.close()
	sys, err := s.system()
	if err != nil {
		return false, err
	}
	return sys.PowerState != schemas.OffPowerState, nil
}

// PowerOn resets the system with ResetType On.
func (r *Redfish) PowerOn(ctx context.Context, t Target) error {
	s, err := r.connect(ctx, t)
	if err != nil {
		return err
	}
	defer s.close()
	sys, err := s.system()
	if err != nil {
		return err
	}
	if sys.PowerState == schemas.OnPowerState {
		return nil
	}
	if _, err := sys.Reset(schemas.OnResetType); err != nil {
		return s.explain("Reset On", err)
	}
	return nil
}

type redfishSession struct {
	endpoint string
	systemID string
	client   *gofish.APIClient
	hc       *http.Client
	secrets  []string
}

func (r *Redfish) connect(ctx context.Context, t Target) (*redfishSession, error) {
	b := r.Class.BMCFor(t.Node)
	endpoint, err := redfishEndpoint(b.Address, b.Port)
	if err != nil {
		return nil, fmt.Errorf("redfish for node %s: %w", t.Node, err)
	}
	s := &redfishSession{endpoint: endpoint, systemID: b.SystemID}
	cfg := gofish.ClientConfig{Endpoint: endpoint, BasicAuth: true, NoModifyTransport: true}
	if b.CredentialsSecret != "" {
		if r.Creds == nil {
			return nil, fmt.Errorf("redfish for node %s: credentials Secret %s cannot be read: no Secret access configured", t.Node, b.CredentialsSecret)
		}
		c, err := r.Creds(ctx, b.CredentialsSecret)
		if err != nil {
			return nil, err
		}
		cfg.Username, cfg.Password = c.Username, c.Password
		s.secrets = append(c.Secrets, c.Password)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// BMC networks are reached directly, never through a proxy; certificate
	// checks are off only where the class says insecureSkipVerify (labs).
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.Class.InsecureSkipVerify}
	s.hc = &http.Client{Transport: tr}
	cfg.HTTPClient = s.hc
	c, err := gofish.ConnectContext(ctx, cfg)
	if err != nil {
		return nil, s.explain("connect", err)
	}
	s.client = c
	return s, nil
}

func (s *redfishSession) close() { s.hc.CloseIdleConnections() }

// system finds the configured ComputerSystem, or the only one.
func (s *redfishSession) system() (*schemas.ComputerSystem, error) {
	systems, err := s.client.Service.Systems()
	if err != nil {
		return nil, s.explain("list Systems", err)
	}
	var ids []string
	for _, sys := range systems {
		if s.systemID != "" && (sys.ID == s.systemID || sys.ODataID == s.systemID || strings.TrimSuffix(sys.ODataID, "/") == strings.TrimSuffix(s.systemID, "/")) {
			return sys, nil
		}
		ids = append(ids, sys.ID)
	}
	sort.Strings(ids)
	switch {
	case s.systemID != "":
		return nil, fmt.Errorf("redfish %s: no system %q (systems: %s); fix systemID", s.endpoint, s.systemID, strings.Join(ids, ", "))
	case len(systems) == 1:
		return systems[0], nil
	case len(systems) == 0:
		return nil, fmt.Errorf("redfish %s: the service lists no systems", s.endpoint)
	}
	return nil, fmt.Errorf("redfish %s: %d systems (%s); set systemID to choose one", s.endpoint, len(systems), strings.Join(ids, ", "))
}

func (s *redfishSession) powerState(uri string) (schemas.PowerState, error) {
	sys, err := schemas.GetComputerSystem(s.client, uri)
	if err != nil {
		return "", s.explain("read PowerState", err)
	}
	return sys.PowerState, nil
}

// explain turns a client error into a reason an operator can act on, with
// secrets redacted.
func (s *redfishSession) explain(step string, err error) error {
	var ce *schemas.CollectionError
	if errors.As(err, &ce) && len(ce.Failures) > 0 {
		links := make([]string, 0, len(ce.Failures))
		for l := range ce.Failures {
			links = append(links, l)
		}
		sort.Strings(links)
		err = fmt.Errorf("%s: %w", links[0], ce.Failures[links[0]])
	}
	var re *schemas.Error
	reason := err.Error()
	if errors.As(err, &re) {
		switch re.HTTPReturnedStatusCode {
		case http.StatusUnauthorized:
			reason = "login denied (HTTP 401): check the user name and password in the credentials Secret"
		case http.StatusForbidden:
			reason = "forbidden (HTTP 403): the BMC user lacks the privilege to do this"
		default:
			msg := re.Message
			if msg == "" {
				msg = strings.TrimSpace(strings.SplitN(re.Error(), "\n", 2)[0])
			}
			reason = fmt.Sprintf("HTTP %d: %s", re.HTTPReturnedStatusCode, msg)
		}
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		reason += " (the BMC's certificate is not trusted; for a lab BMC with a self-signed certificate set insecureSkipVerify: true)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		reason = "timed out (BMC unreachable or slow?): " + reason
	}
	return fmt.Errorf("redfish %s: %s: %s", s.endpoint, step, keep(redact(reason, s.secrets)))
}

// redfishEndpoint makes the service's base URL from an address (host, or
// http(s) URL) and a port.
func redfishEndpoint(address string, port int) (string, error) {
	if address == "" {
		return "", errors.New("no BMC address: set address on the class or for the node under nodes")
	}
	a := address
	if !strings.Contains(a, "://") {
		a = "https://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("BMC address %q is not a host or an http(s) URL", address)
	}
	if port != 0 {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String(), nil
}

func orUnknown(p schemas.PowerState) string {
	if p == "" {
		return "of unknown PowerState"
	}
	return string(p)
}
