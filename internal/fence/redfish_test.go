package fence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

// bmc serves the parts of a Redfish service liberator uses, in the shapes
// of the DMTF schemas (ServiceRoot v1, ComputerSystemCollection,
// ComputerSystem v1 with PowerState and Actions/#ComputerSystem.Reset), with
// HTTP Basic authentication as a BMC does.
type bmc struct {
	mu      sync.Mutex
	user    string
	pass    string
	systems []string
	power   map[string]string
	// offAfter is how many PowerState reads after a ForceOff still say
	// PoweringOff; never makes the system stay on whatever is asked.
	offAfter int
	never    bool
	pending  map[string]int
	resets   []string
}

func newBMC(systems ...string) *bmc {
	b := &bmc{user: "root", pass: "calvin-s3cret", systems: systems, power: map[string]string{}, pending: map[string]int{}}
	for _, s := range systems {
		b.power[s] = "On"
	}
	return b
}

func (b *bmc) resetLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.resets...)
}

func (b *bmc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	reply := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	redfishError := func(code int, id, msg string) {
		reply(code, map[string]any{"error": map[string]any{
			"code": "Base.1.8." + id, "message": msg,
			"@Message.ExtendedInfo": []map[string]any{{"MessageId": "Base.1.8." + id, "Message": msg, "Severity": "Critical"}},
		}})
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/redfish/v1" || path == "/redfish" {
		// The service root is readable without authentication.
		reply(http.StatusOK, map[string]any{
			"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
			"Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.15.0",
			"UUID":    "92384634-2938-2342-8820-489239905423",
			"Systems": map[string]string{"@odata.id": "/redfish/v1/Systems"},
			"Links":   map[string]any{"Sessions": map[string]string{"@odata.id": "/redfish/v1/SessionService/Sessions"}},
		})
		return
	}
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(b.user+":"+b.pass)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="redfish"`)
		redfishError(http.StatusUnauthorized, "InsufficientPrivilege", "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.")
		return
	}
	if path == "/redfish/v1/Systems" {
		members := []map[string]string{}
		for _, s := range b.systems {
			members = append(members, map[string]string{"@odata.id": "/redfish/v1/Systems/" + s})
		}
		reply(http.StatusOK, map[string]any{
			"@odata.id": "/redfish/v1/Systems", "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
			"Name": "Computer System Collection", "Members@odata.count": len(members), "Members": members,
		})
		return
	}
	rest, ok := strings.CutPrefix(path, "/redfish/v1/Systems/")
	if !ok {
		redfishError(http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+path+" was not found.")
		return
	}
	id, action, _ := strings.Cut(rest, "/")
	if _, ok := b.power[id]; !ok {
		redfishError(http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+path+" was not found.")
		return
	}
	switch {
	case action == "" && r.Method == http.MethodGet:
		state := b.power[id]
		if n := b.pending[id]; n > 0 || (b.never && state == "Off") {
			b.pending[id]--
			state = "PoweringOff"
			if b.never {
				state = "On"
			}
		}
		reply(http.StatusOK, map[string]any{
			"@odata.id": "/redfish/v1/Systems/" + id, "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
			"Id": id, "Name": "Node " + id, "SystemType": "Physical", "PowerState": state,
			"Status": map[string]string{"State": "Enabled", "Health": "OK"},
			"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
				"target":                            "/redfish/v1/Systems/" + id + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton"},
			}},
		})
	case action == "Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		var body struct{ ResetType string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			redfishError(http.StatusBadRequest, "MalformedJSON", "The request body submitted was malformed JSON.")
			return
		}
		b.resets = append(b.resets, id+":"+body.ResetType)
		switch body.ResetType {
		case "ForceOff":
			b.power[id] = "Off"
			b.pending[id] = b.offAfter
		case "On", "ForceOn":
			b.power[id] = "On"
		default:
			redfishError(http.StatusBadRequest, "ActionParameterNotSupported", "The parameter ResetType for the action ComputerSystem.Reset is not supported.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		redfishError(http.StatusMethodNotAllowed, "OperationNotAllowed", "The HTTP method is not allowed for this resource.")
	}
}

var redfishSecrets = secretsOf(map[string]map[string]string{
	"bmc":   {"username": "root", "password": "calvin-s3cret"},
	"wrong": {"username": "root", "password": "not-calvin-pw"},
})

func redfishFor(t *testing.T, fc config.FenceClass) *Redfish {
	t.Helper()
	fc.Name, fc.Provider = "redfish", config.ProviderRedfish
	if fc.CredentialsSecret == "" {
		fc.CredentialsSecret = "bmc"
	}
	f, err := Factory{Secrets: redfishSecrets, Namespace: "tkr-system"}.For(fc)
	if err != nil {
		t.Fatal(err)
	}
	r := f.(*Redfish)
	r.PollInterval = 20 * time.Millisecond
	return r
}

func TestRedfishForceOffReadsOffBack(t *testing.T) {
	b := newBMC("437XR1138R2")
	b.offAfter = 3 // PoweringOff for three reads
	srv := httptest.NewTLSServer(b)
	defer srv.Close()
	r := redfishFor(t, config.FenceClass{Address: srv.URL, InsecureSkipVerify: true})
	ctx := context.Background()
	if on, err := r.Status(ctx, Target{Node: "n"}); err != nil || !on {
		t.Fatalf("status = %v, %v; want on", on, err)
	}
	res, err := r.Fence(ctx, Target{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Done || !res.PowerOff {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Output, "Reset ForceOff; PowerState read Off (4 read(s))") {
		t.Fatalf("output %q", res.Output)
	}
	if got := b.resetLog(); len(got) != 1 || got[0] != "437XR1138R2:ForceOff" {
		t.Fatalf("resets %v", got)
	}
	// Idempotent: already off, no second reset.
	if res, err := r.Fence(ctx, Target{Node: "n"}); err != nil || !res.Done || !strings.Contains(res.Output, "already Off") {
		t.Fatalf("second fence: %+v, %v", res, err)
	}
	if got := b.resetLog(); len(got) != 1 {
		t.Fatalf("resets after second fence %v", got)
	}
	if on, err := r.Status(ctx, Target{Node: "n"}); err != nil || on {
		t.Fatalf("status = %v, %v; want off", on, err)
	}
	if err := r.PowerOn(ctx, Target{Node: "n"}); err != nil {
		t.Fatal(err)
	}
	if on, err := r.Status(ctx, Target{Node: "n"}); err != nil || !on {
		t.Fatalf("status after power on = %v, %v; want on", on, err)
	}
}

func TestRedfishReboot(t *testing.T) {
	b := newBMC("1")
	srv := httptest.NewServer(b)
	defer srv.Close()
	res, err := redfishFor(t, config.FenceClass{Address: srv.URL, Action: config.ActionReboot}).Fence(context.Background(), Target{Node: "n"})
	if err != nil || !res.Done || !res.PowerOff {
		t.Fatalf("reboot: %+v, %v", res, err)
	}
	if got := strings.Join(b.resetLog(), ","); got != "1:ForceOff,1:On" {
		t.Fatalf("resets %s, want ForceOff then On", got)
	}
}

func TestRedfishSystemChoice(t *testing.T) {
	b := newBMC("blade-1", "blade-2")
	srv := httptest.NewServer(b)
	defer srv.Close()
	_, err := redfishFor(t, config.FenceClass{Address: srv.URL}).Fence(context.Background(), Target{Node: "n"})
	if err == nil || !strings.Contains(err.Error(), "2 systems (blade-1, blade-2); set systemID") {
		t.Fatalf("error = %v", err)
	}
	// Per node: each node its own system on a shared chassis BMC.
	fc := config.FenceClass{Address: srv.URL, Nodes: map[string]config.NodeFence{
		"worker-1": {SystemID: "blade-1"}, "worker-2": {SystemID: "/redfish/v1/Systems/blade-2"},
	}}
	r := redfishFor(t, fc)
	if _, err := r.Fence(context.Background(), Target{Node: "worker-2"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.resetLog(), ","); got != "blade-2:ForceOff" {
		t.Fatalf("resets %s", got)
	}
	_, err = redfishFor(t, config.FenceClass{Address: srv.URL, SystemID: "blade-9"}).Status(context.Background(), Target{Node: "n"})
	if err == nil || !strings.Contains(err.Error(), `no system "blade-9" (systems: blade-1, blade-2)`) {
		t.Fatalf("error = %v", err)
	}
}

func TestRedfishFailures(t *testing.T) {
	b := newBMC("1")
	tlsSrv := httptest.NewUnstartedServer(b)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plain := httptest.NewServer(b)
	defer plain.Close()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	cases := []struct {
		name string
		fc   config.FenceClass
		want string
	}{
		{"wrong password", config.FenceClass{Address: plain.URL, CredentialsSecret: "wrong"}, "login denied (HTTP 401): check the user name and password"},
		{"certificate not trusted", config.FenceClass{Address: tlsSrv.URL}, "certificate"},
		{"unreachable", config.FenceClass{Address: "http://" + closed}, "connection refused"},
		{"missing secret", config.FenceClass{Address: plain.URL, CredentialsSecret: "gone"}, "credentials Secret tkr-system/gone not found"},
		{"no address", config.FenceClass{}, "no BMC address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redfishFor(t, tc.fc).Fence(context.Background(), Target{Node: "n"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
			if strings.Contains(err.Error(), "not-calvin-pw") || strings.Contains(err.Error(), "calvin-s3cret") {
				t.Fatalf("a password leaked: %v", err)
			}
		})
	}
	if got := b.resetLog(); len(got) != 0 {
		t.Fatalf("a failed connection still reset the system: %v", got)
	}
}

func TestRedfishNeverOffIsNotProven(t *testing.T) {
	b := newBMC("1")
	b.never = true
	srv := httptest.NewServer(b)
	defer srv.Close()
	r := redfishFor(t, config.FenceClass{Address: srv.URL})
	r.ConfirmTimeout = 300 * time.Millisecond
	res, err := r.Fence(context.Background(), Target{Node: "n"})
	if err == nil || res.Done || !strings.Contains(err.Error(), "PowerState did not read Off") {
		t.Fatalf("fence = %+v, %v", res, err)
	}
}

func TestRedfishTimeout(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := redfishFor(t, config.FenceClass{Address: srv.URL}).Fence(ctx, Target{Node: "n"})
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("fence against a hanging BMC: %v after %s", err, time.Since(start))
	}
}

func TestRedfishEndpoint(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port int
		want string
	}{
		{"10.0.0.5", 0, "https://10.0.0.5"},
		{"10.0.0.5", 8443, "https://10.0.0.5:8443"},
		{"http://127.0.0.1:8000/", 0, "http://127.0.0.1:8000"},
		{"https://bmc.example:443", 9443, "https://bmc.example:9443"},
		{"fd00::5", 0, ""},
		{"[fd00::5]", 443, "https://[fd00::5]:443"},
	} {
		got, err := redfishEndpoint(tc.addr, tc.port)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: accepted as %s", tc.addr, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("redfishEndpoint(%q, %d) = %q, %v; want %q", tc.addr, tc.port, got, err, tc.want)
		}
	}
}
