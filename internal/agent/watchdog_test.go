package agent

import (
	"bufio"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// socketServer is a tiny socket watchdog: it caps the timeout at max and
// sends each connection's lines, ended by "EOF", on the returned channel.
func socketServer(t *testing.T, max int, answer string) (string, <-chan []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := make(chan []string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var lines []string
			s := bufio.NewScanner(c)
			for s.Scan() {
				lines = append(lines, s.Text())
				if f := strings.Fields(s.Text()); len(f) == 2 && f[0] == "timeout" {
					n, _ := strconv.Atoi(f[1])
					reply := answer
					if reply == "" {
						reply = "timeout " + strconv.Itoa(min(n, max))
					}
					_, _ = c.Write([]byte(reply + "\n"))
				}
			}
			c.Close()
			conns <- append(lines, "EOF")
		}
	}()
	return path, conns
}

func TestSocketWatchdog(t *testing.T) {
	path, conns := socketServer(t, 5, "")
	wd, err := OpenWatchdog(SocketPrefix + path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := wd.Arm(10 * time.Second); err != nil || got != 5*time.Second {
		t.Fatalf("Arm(10s) = %s, %v; want the 5s the server accepted", got, err)
	}
	if err := wd.Feed(); err != nil {
		t.Fatal(err)
	}
	if err := wd.MagicClose(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(<-conns, ","), "timeout 10,keepalive,V,EOF"; got != want {
		t.Errorf("magic close: the server saw %s, want %s", got, want)
	}
	wd, err = OpenWatchdog(SocketPrefix + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wd.Arm(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := wd.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(<-conns, ","), "timeout 3,EOF"; got != want {
		t.Errorf("close: the server saw %s, want %s (no V: the timer keeps running)", got, want)
	}
	if _, err := wd.Arm(1500 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "whole number of seconds") {
		t.Errorf("Arm(1.5s): %v", err)
	}
}

func TestSocketWatchdogRefusesABadAnswer(t *testing.T) {
	path, _ := socketServer(t, 5, "ok")
	wd, err := DialSocketWatchdog(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Close()
	if _, err := wd.Arm(10 * time.Second); err == nil || !strings.Contains(err.Error(), `answer "ok" is not "timeout N"`) {
		t.Errorf("Arm with a bad answer: %v", err)
	}
}

func TestOpenWatchdogNamesTheDevice(t *testing.T) {
	for _, dev := range []string{"/nonexistent/watchdog", SocketPrefix + "/nonexistent/wd.sock"} {
		_, err := OpenWatchdog(dev)
		name := strings.TrimPrefix(dev, SocketPrefix)
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("OpenWatchdog(%s): %v, want one line naming it", dev, err)
		}
	}
}

// The fake says when a real watchdog would have fired, and remembers it
// even when fed again later.
func TestFakeFires(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	f := NewFake(clk)
	f.MaxTimeout = 2 * time.Second
	if got, _ := f.Arm(10 * time.Second); got != 2*time.Second {
		t.Errorf("accepted %s, want the 2s cap", got)
	}
	clk.Step(1500 * time.Millisecond)
	_ = f.Feed()
	clk.Step(1999 * time.Millisecond)
	if _, fired := f.Fired(); fired {
		t.Fatal("fired before the timeout")
	}
	clk.Step(time.Millisecond)
	at, fired := f.Fired()
	if !fired || !at.Equal(time.Unix(1003, 500_000_000)) {
		t.Fatalf("fired %v at %s, want at the last feed + 2s", fired, at)
	}
	_ = f.Feed()
	if _, fired := f.Fired(); !fired {
		t.Error("a later feed undid the reset")
	}
	g := NewFake(clk)
	_, _ = g.Arm(time.Second)
	_ = g.MagicClose()
	clk.Step(time.Hour)
	if _, fired := g.Fired(); fired {
		t.Error("fired after the magic close")
	}
	h := NewFake(clk)
	_, _ = h.Arm(time.Second)
	_ = h.Close()
	clk.Step(time.Second)
	if _, fired := h.Fired(); !fired {
		t.Error("did not fire after a close without the magic close")
	}
}
