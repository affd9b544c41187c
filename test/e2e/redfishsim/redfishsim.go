// Package redfishsim serves a minimal Redfish BMC over HTTPS on loopback,
// in the test process: the service root, the Systems collection, one
// ComputerSystem with its PowerState, and the ComputerSystem.Reset action
// (ForceOff, On), with HTTP Basic authentication. It counts every ForceOff
// request and runs the caller's hooks when the power goes off or on, so a
// test bed node can be powered off for real by its BMC.
package redfishsim

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure one BMC.
type Options struct {
	// Name names the node whose BMC this is (the system's Name).
	Name string
	// User and Password are the BMC's account.
	User, Password string
	// PowerOff runs when the system's power goes off (ForceOff); the reset
	// request is answered once it returns (unless OffDelay is set).
	PowerOff func()
	// PowerOn runs when the system's power goes on (Reset On).
	PowerOn func()
}

// Event is one request that changed, or asked to change, the power.
type Event struct {
	Time      time.Time
	ResetType string
}

// BMC is a running simulated Redfish BMC.
type BMC struct {
	// Address is the BMC's URL without its port ("https://127.0.0.1").
	Address string
	Port    int

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	power    string // On, PoweringOff, Off
	offDelay time.Duration
	events   []Event
}

// Start serves a BMC on a free loopback port with a self-signed
// certificate (the controller's class needs insecureSkipVerify). Its system
// is powered on.
func Start(opts Options) (*BMC, error) {
	b := &BMC{opts: opts, power: "On"}
	b.srv = httptest.NewUnstartedServer(b)
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.srv.StartTLS()
	_, port, err := net.SplitHostPort(b.srv.Listener.Addr().String())
	if err != nil {
		b.srv.Close()
		return nil, err
	}
	b.Address = "https://127.0.0.1"
	b.Port, _ = strconv.Atoi(port)
	return b, nil
}

// Close stops serving.
func (b *BMC) Close() { b.srv.Close() }

// SetOffDelay makes later ForceOff requests take d before the power is
// actually off: the request is accepted at once, and PowerState reads
// PoweringOff meanwhile (a fence held in Fencing).
func (b *BMC) SetOffDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offDelay = d
}

// SetPower sets the power state as seen by the BMC without a request (the
// test powered the node on or off itself); nothing is counted.
func (b *BMC) SetPower(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.power = "Off"
	if on {
		b.power = "On"
	}
}

// ForceOffs counts the ForceOff requests received.
func (b *BMC) ForceOffs() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.events {
		if e.ResetType == "ForceOff" {
			n++
		}
	}
	return n
}

// Events returns the reset requests received, oldest first.
func (b *BMC) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

const systemPath = "/redfish/v1/Systems/1"

func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	reply := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, id, msg string) {
		reply(code, map[string]any{"error": map[string]any{
			"code": "Base.1.8." + id, "message": msg,
			"@Message.ExtendedInfo": []map[string]any{{"MessageId": "Base.1.8." + id, "Message": msg, "Severity": "Critical"}},
		}})
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/redfish/v1" || path == "/redfish" {
		reply(http.StatusOK, map[string]any{
			"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
			"Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.15.0",
			"Systems": map[string]string{"@odata.id": "/redfish/v1/Systems"},
		})
		return
	}
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(b.opts.User+":"+b.opts.Password)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="redfish"`)
		fail(http.StatusUnauthorized, "InsufficientPrivilege", "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.")
		return
	}
	switch {
	case path == "/redfish/v1/Systems" && r.Method == http.MethodGet:
		reply(http.StatusOK, map[string]any{
			"@odata.id": "/redfish/v1/Systems", "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
			"Name": "Computer System Collection", "Members@odata.count": 1,
			"Members": []map[string]string{{"@odata.id": systemPath}},
		})
	case path == systemPath && r.Method == http.MethodGet:
		b.mu.Lock()
		state := b.power
		b.mu.Unlock()
		reply(http.StatusOK, map[string]any{
			"@odata.id": systemPath, "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
			"Id": "1", "Name": b.opts.Name, "SystemType": "Physical", "PowerState": state,
			"Status": map[string]string{"State": "Enabled", "Health": "OK"},
			"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
				"target":                            systemPath + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff"},
			}},
		})
	case path == systemPath+"/Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		var body struct{ ResetType string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fail(http.StatusBadRequest, "MalformedJSON", "The request body submitted was malformed JSON.")
			return
		}
		switch body.ResetType {
		case "ForceOff":
			b.forceOff()
		case "On", "ForceOn":
			b.mu.Lock()
			b.events = append(b.events, Event{Time: time.Now(), ResetType: body.ResetType})
			was := b.power
			b.power = "On"
			b.mu.Unlock()
			if was != "On" && b.opts.PowerOn != nil {
				b.opts.PowerOn()
			}
		default:
			fail(http.StatusBadRequest, "ActionParameterNotSupported", "The parameter ResetType for the action ComputerSystem.Reset is not supported.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+path+" was not found.")
	}
}

// forceOff counts the request and turns the power off: at once (the node is
// off before the request is answered), or after the off delay.
func (b *BMC) forceOff() {
	b.mu.Lock()
	b.events = append(b.events, Event{Time: time.Now(), ResetType: "ForceOff"})
	delay, was := b.offDelay, b.power
	if was == "Off" {
		b.mu.Unlock()
		return
	}
	if delay > 0 {
		b.power = "PoweringOff"
	}
	b.mu.Unlock()
	off := func() {
		if b.opts.PowerOff != nil {
			b.opts.PowerOff()
		}
		b.mu.Lock()
		b.power = "Off"
		b.mu.Unlock()
	}
	if delay == 0 {
		off()
		return
	}
	time.AfterFunc(delay, off)
}
