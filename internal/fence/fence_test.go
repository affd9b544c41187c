package fence

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/internal/config"
)

func TestWait(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := For(config.FenceClass{Name: "lab", Provider: "wait", Wait: &config.WaitFence{SafeTime: config.Duration{Duration: 10 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Fence(context.Background(), Target{Node: "n", DetectedAt: t0, Now: t0.Add(4 * time.Second)})
	if err != nil || r.Done || r.RetryAfter != 6*time.Second {
		t.Fatalf("before safe time: %+v, %v; want not done, retry in 6s", r, err)
	}
	r, err = f.Fence(context.Background(), Target{Node: "n", DetectedAt: t0, Now: t0.Add(10 * time.Second)})
	if err != nil || !r.Done || r.Unsafe || r.PowerOff {
		t.Fatalf("after safe time: %+v, %v; want done, safe, no power off", r, err)
	}
}

func TestNoneIsUnsafe(t *testing.T) {
	c := config.FenceClass{Name: "stateless", Provider: "none", ReleaseUnproven: true}
	f, err := For(c)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := f.Fence(context.Background(), Target{Node: "n", Class: c})
	if !r.Done || !r.Unsafe {
		t.Fatalf("none: %+v, want done and unsafe", r)
	}
}

// A none class without releaseUnproven has no automatic fence: asked to
// fence anyway, it refuses (only an operator's confirm-off releases it).
func TestNoneWithoutReleaseUnprovenFencesNothing(t *testing.T) {
	c := config.FenceClass{Name: "manual", Provider: "none"}
	f, err := For(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Fence(context.Background(), Target{Node: "n", Class: c})
	if err == nil || r.Done || !strings.Contains(err.Error(), "liberator confirm-off n") {
		t.Fatalf("none without releaseUnproven: %+v, %v; want an error naming confirm-off", r, err)
	}
}

func TestUnknownProvider(t *testing.T) {
	if _, err := For(config.FenceClass{Name: "x", Provider: "ipmi"}); err == nil {
		t.Fatal("unknown provider accepted")
	}
	if _, err := For(config.FenceClass{Name: "x", Provider: "wait"}); err == nil {
		t.Fatal("wait without safeTime accepted")
	}
	if _, err := For(config.FenceClass{Name: "x", Provider: config.ProviderAgent}); err == nil || !strings.Contains(err.Error(), "agent Leases") {
		t.Fatalf("agent provider without the controller's view: %v", err)
	}
	want := &Fake{}
	f := Factory{Agent: func(c config.FenceClass) (Fencer, error) { return want, nil }}
	if got, err := f.For(config.FenceClass{Name: "x", Provider: config.ProviderAgent}); err != nil || got != want {
		t.Fatalf("agent provider: %v, %v", got, err)
	}
}
