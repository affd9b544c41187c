// Package ipmisim runs OpenIPMI's BMC simulator, ipmi_sim (Debian package
// openipmi), on a loopback UDP port: a real IPMI 2.0 (RMCP+) BMC that
// fence_ipmilan and ipmitool talk to as they would to a server's.
//
// The simulated chassis's power is a file: ipmi_sim's chassis_control
// program (a shell script written here) records every power change in it and
// in an event log. Watch reports the changes, so a test can stop a
// simulated node's heartbeats when the BMC turns the power off and start
// them (with a new bootID) when it turns it on.
package ipmisim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Binaries the simulator and the fence path need.
const (
	SimBinary   = "ipmi_sim"      // Debian: openipmi
	AgentBinary = "fence_ipmilan" // Debian: fence-agents
	ToolBinary  = "ipmitool"      // Debian: ipmitool (fence_ipmilan runs it)
)

// Missing returns the binaries of the fence test path that are not
// installed, with the Debian package of each.
func Missing() []string {
	var out []string
	for bin, pkg := range map[string]string{SimBinary: "openipmi", AgentBinary: "fence-agents", ToolBinary: "ipmitool"} {
		if _, err := look(bin); err != nil {
			out = append(out, bin+" (Debian package "+pkg+")")
		}
	}
	return out
}

func look(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", bin)
}

// Options configure one simulated BMC.
type Options struct {
	// Name names the BMC (its state directory and logs).
	Name string
	// Dir holds the BMC's files; it must exist (a test's TempDir).
	Dir string
	// User and Password are the BMC's admin account; Password defaults to
	// a random one.
	User, Password string
	// Port is the UDP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Off starts the chassis powered off.
	Off bool
}

// BMC is a running ipmi_sim.
type BMC struct {
	Name           string
	Addr           string
	Port           int
	User, Password string
	Dir            string
	cmd            *exec.Cmd
	done           chan struct{}
	logFile        *os.File
}

// chassisScript implements ipmi_sim's chassis_control protocol:
//
//	script <device> get power|boot ...   prints "power:1" / "boot:default"
//	script <device> set power 0|1 ...    changes the power
//	script <device> set reset 1          a power cycle (off, then on)
//
// The power state is the file "power" (1 on, 0 off); "boots" counts
// power-ons; "events" logs every change with a timestamp.
const chassisScript = `#!/bin/sh
dir=%q
dev=$1; op=$2; shift 2
now=$(date +%%s.%%N)
case "$op" in
get)
	for p in "$@"; do
		case "$p" in
		power) echo "power:$(cat "$dir/power")" ;;
		boot) echo "boot:default" ;;
		*) echo "Invalid parameter: $p"; exit 1 ;;
		esac
	done ;;
set)
	while [ $# -gt 0 ]; do
		p=$1; v=$2; shift 2
		case "$p" in
		power)
			old=$(cat "$dir/power")
			echo "$v" > "$dir/power.tmp" && mv "$dir/power.tmp" "$dir/power"
			if [ "$v" = 1 ] && [ "$old" != 1 ]; then echo $(( $(cat "$dir/boots") + 1 )) > "$dir/boots"; fi
			echo "$now power $v" >> "$dir/events" ;;
		reset)
			echo $(( $(cat "$dir/boots") + 1 )) > "$dir/boots"
			echo "$now reset" >> "$dir/events" ;;
		boot) ;;
		identify) shift ;;
		*) echo "Invalid parameter: $p"; exit 1 ;;
		esac
	done ;;
check) exit 1 ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
`

// Start writes the BMC's configuration and starts ipmi_sim; it returns once
// the BMC answers an RMCP presence ping.
func Start(ctx context.Context, o Options) (*BMC, error) {
	sim, err := look(SimBinary)
	if err != nil {
		return nil, fmt.Errorf("ipmi_sim is not installed (Debian package openipmi): %w", err)
	}
	if o.Name == "" {
		o.Name = "bmc"
	}
	if o.User == "" {
		o.User = "admin"
	}
	if o.Password == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		o.Password = hex.EncodeToString(b)
	}
	if strings.ContainsAny(o.User+o.Password, "\" \n") {
		return nil, errors.New("ipmisim: user and password must not contain spaces or quotes")
	}
	dir := filepath.Join(o.Dir, o.Name)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
		return nil, err
	}
	power := "1"
	if o.Off {
		power = "0"
	}
	for name, content := range map[string]string{"power": power + "\n", "boots": "1\n", "events": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	script := filepath.Join(dir, "chassis-control")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(chassisScript, dir)), 0o755); err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = freeUDPPort(); err != nil {
			return nil, err
		}
	}
	// lan.conf: one LAN channel on loopback with RMCP+ (IPMI 2.0) and the
	// 1.5 auth types, one admin user, chassis power through the script.
	lan := fmt.Sprintf(`name "%s"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
  user 2 true "%s" "%s" admin 10 none md2 md5 straight
`, o.Name, port, script, o.User, o.Password)
	// The emulator: one BMC at IPMB address 0x20, enabled.
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n"
	lanPath, emuPath := filepath.Join(dir, "lan.conf"), filepath.Join(dir, "bmc.emu")
	if err := os.WriteFile(lanPath, []byte(lan), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(emuPath, []byte(emu), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(sim, "-n", "-c", lanPath, "-f", emuPath, "-s", filepath.Join(dir, "state"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start ipmi_sim: %w", err)
	}
	b := &BMC{Name: o.Name, Addr: "127.0.0.1", Port: port, User: o.User, Password: o.Password, Dir: dir, cmd: cmd, done: make(chan struct{}), logFile: logFile}
	go func() { _ = cmd.Wait(); close(b.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := Ping(ctx, b.Addr, b.Port, 200*time.Millisecond); err == nil {
			return b, nil
		}
		select {
		case <-b.done:
			log, _ := os.ReadFile(logFile.Name())
			b.logFile.Close()
			return nil, fmt.Errorf("ipmi_sim exited at start: %s", bytes.TrimSpace(log))
		case <-ctx.Done():
			_ = b.Stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			_ = b.Stop()
			return nil, fmt.Errorf("ipmi_sim on 127.0.0.1:%d did not answer an RMCP ping within 10s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills ipmi_sim (and any chassis-control program it runs).
func (b *BMC) Stop() error {
	if b.cmd.Process != nil {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-b.done
	return b.logFile.Close()
}

// Power reads the chassis power state.
func (b *BMC) Power() (bool, error) {
	s, err := os.ReadFile(filepath.Join(b.Dir, "power"))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(s)) == "1", nil
}

// SetPower changes the power state behind the BMC's back (a person at the
// power button).
func (b *BMC) SetPower(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	tmp := filepath.Join(b.Dir, "power.tmp")
	if err := os.WriteFile(tmp, []byte(v), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(b.Dir, "power"))
}

// Boots counts power-ons and resets, the first boot included.
func (b *BMC) Boots() int {
	s, _ := os.ReadFile(filepath.Join(b.Dir, "boots"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(s)))
	return n
}

// Events returns the power changes the BMC carried out, oldest first, as
// "<unix time> power 0", "<unix time> power 1" or "<unix time> reset".
func (b *BMC) Events() []string {
	s, _ := os.ReadFile(filepath.Join(b.Dir, "events"))
	if t := strings.TrimSpace(string(s)); t != "" {
		return strings.Split(t, "\n")
	}
	return nil
}

// Watch calls fn with the power state each time it changes (polled every
// 20ms) until ctx ends. It does not call fn for the state at the start.
func (b *BMC) Watch(ctx context.Context, fn func(on bool)) {
	last, _ := b.Power()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		on, err := b.Power()
		if err == nil && on != last {
			last = on
			fn(on)
		}
	}
}

// Ping sends an RMCP/ASF presence ping and waits for the pong.
func Ping(ctx context.Context, addr string, port int, timeout time.Duration) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer conn.Close()
	// RMCP header (version 6, sequence 0xff: no ack, class ASF), ASF IANA
	// enterprise 4542, message type 0x80 presence ping, tag, length 0.
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}
	if _, err := conn.Write(ping); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if n < 9 || buf[8] != 0x40 {
		return fmt.Errorf("not an RMCP presence pong: % x", buf[:n])
	}
	return nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
