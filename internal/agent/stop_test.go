package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// stepWhileWaiting runs f in the background and steps the clock by a check
// interval whenever f waits on it, until f returns.
func (b *bed) stepWhileWaiting(f func()) time.Duration {
	start := b.clk.Now()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	for {
		select {
		case <-done:
			return b.clk.Since(start)
		case <-time.After(time.Millisecond):
			if b.clk.HasWaiters() {
				b.clk.Step(b.a.bounds.CheckInterval)
			}
		}
	}
}

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name        string
		prepare     func(b *bed)
		wantMagic   bool
		wantArmed   string
		wantAck     string
		maxDuration time.Duration
	}{
		{"API up: armed=false, then the magic close", func(*bed) {}, true, "false", "", 0},
		{"API down: the watchdog is left running", func(b *bed) { b.apiUp.Store(false) }, false, "true", "", StopTimeout},
		{"fenced: the watchdog is left running", func(b *bed) {
			b.setAnnotation(agentlease.FenceRequest, "tk")
			b.tick()
			b.tick()
		}, false, "true", "tk", 0},
		{"a fence request read while stopping is honoured", func(b *bed) {
			b.setAnnotation(agentlease.FenceRequest, "tk")
		}, false, "true", "tk", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, testConfig(t))
			b.start()
			b.tick()
			tc.prepare(b)
			took := b.stepWhileWaiting(b.a.stop)
			if took > tc.maxDuration {
				t.Errorf("the stop took %s, want at most %s", took, tc.maxDuration)
			}
			_, magic, closed := b.wd.State()
			if !closed || magic != tc.wantMagic {
				t.Errorf("closed %v, magic close %v; want the magic close %v", closed, magic, tc.wantMagic)
			}
			l := b.lease()
			if l.Annotations[agentlease.Armed] != tc.wantArmed || l.Annotations[agentlease.FenceAck] != tc.wantAck {
				t.Errorf("lease says armed=%s ack=%q, want %s %q", l.Annotations[agentlease.Armed], l.Annotations[agentlease.FenceAck], tc.wantArmed, tc.wantAck)
			}
		})
	}
}

// Run arms, feeds, and on cancellation disarms cleanly.
func TestRunStopsCleanly(t *testing.T) {
	b := newBed(t, testConfig(t))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() { errc <- b.a.Run(ctx) }()
	for len(b.wd.Feeds()) < 10 {
		if b.clk.HasWaiters() {
			b.clk.Step(b.a.bounds.CheckInterval)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, magic, _ := b.wd.State(); !magic {
		t.Error("no magic close after a clean stop")
	}
	if got := b.lease().Annotations[agentlease.Armed]; got != "false" {
		t.Errorf("armed=%s after a clean stop", got)
	}
}

func TestHealthEndpoints(t *testing.T) {
	b := newBed(t, testConfig(t))
	srv := httptest.NewServer(b.a.healthMux())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d before arming", code)
	}
	b.start()
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d after the start", code)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d once armed", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "liberator_agent_armed 1") || !strings.Contains(body, "liberator_agent_peer_bytes_sent_total") {
		t.Errorf("/metrics lacks the agent's metrics:\n%.2000s", body)
	}
	b.clk.Step(2 * b.a.bounds.WatchdogTimeout)
	if code, _ := get("/healthz"); code != http.StatusInternalServerError {
		t.Errorf("/healthz = %d with the loop stalled for two watchdog timeouts", code)
	}
	b.a.fence("request", "test")
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d once fenced", code)
	}
}
