package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// testBounds keep the tests short: an API timeout of 1s, a 1s watchdog.
var testBounds = agentlease.Bounds{
	WatchdogTimeout: time.Second,
	CheckInterval:   100 * time.Millisecond,
	RenewInterval:   200 * time.Millisecond,
	APITimeout:      time.Second,
	PeerTimeout:     100 * time.Millisecond,
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

const (
	testNode = "n1"
	testNS   = "tkr-system"
	testBoot = "boot-1"
)

// bed is one agent under test with its fakes.
type bed struct {
	t     *testing.T
	ctx   context.Context
	a     *Agent
	clk   *clocktesting.FakeClock
	wd    *Fake
	kube  *fake.Clientset
	apiUp atomic.Bool
	// failNext fails that many more lease calls although the API is up.
	failNext atomic.Int32
}

func testConfig(t *testing.T) Config {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(boot, []byte(testBoot+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{Node: testNode, Namespace: testNS, WatchdogDevice: "fake", Bounds: testBounds,
		PeerListen: "127.0.0.1:0", PeerAddress: "127.0.0.1:9447", PeerKey: testKey, BootIDFile: boot}
}

// newBed builds an agent on a fake clock, a Fake watchdog and a fake
// clientset holding objs, whose lease calls fail while the API is down.
func newBed(t *testing.T, cfg Config, objs ...runtime.Object) *bed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := &bed{t: t, ctx: ctx, clk: clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), kube: fake.NewClientset(objs...)}
	b.apiUp.Store(true)
	b.wd = NewFake(b.clk)
	b.kube.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !b.apiUp.Load() {
			return true, nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
		}
		if b.failNext.Add(-1) >= 0 {
			return true, nil, errors.New("context deadline exceeded")
		}
		b.failNext.Store(0)
		return false, nil, nil
	})
	a, err := New(cfg, Deps{Kube: b.kube, Clock: b.clk, Log: testr.New(t), Metrics: NewMetrics(),
		OpenWatchdog: func(string) (Watchdog, error) { return b.wd, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if a.bootID, err = ReadBootID(cfg.BootIDFile); err != nil {
		t.Fatal(err)
	}
	b.a = a
	return b
}

// start runs the agent's start; the API is up, so it arms at once.
func (b *bed) start() {
	b.t.Helper()
	if err := b.a.start(b.ctx); err != nil {
		b.t.Fatal(err)
	}
	if b.a.wd == nil {
		b.t.Fatal("the agent did not arm")
	}
}

// runStart runs the agent's start in the background, stepping the clock
// each time it waits, for at most iterations waits; then it cancels it.
func (b *bed) runStart(iterations int) error {
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.a.start(ctx) }()
	for i := 0; ; {
		select {
		case err := <-done:
			return err
		default:
		}
		if !b.clk.HasWaiters() {
			time.Sleep(time.Millisecond)
			continue
		}
		if i == iterations {
			cancel()
			return <-done
		}
		b.clk.Step(b.a.bounds.CheckInterval)
		i++
	}
}

// tick moves the clock one check interval and runs one iteration.
func (b *bed) tick() {
	b.clk.Step(b.a.bounds.CheckInterval)
	b.a.iterate(b.ctx)
}

// lease reads the agent's Lease from the fake clientset's tracker.
func (b *bed) lease() *coordinationv1.Lease {
	b.t.Helper()
	obj, err := b.kube.Tracker().Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, agentlease.LeaseName(testNode))
	if err != nil {
		b.t.Fatal(err)
	}
	return obj.(*coordinationv1.Lease)
}

// setAnnotation writes an annotation on the agent's Lease, as the
// controller's merge patch does.
func (b *bed) setAnnotation(key, value string) {
	b.t.Helper()
	l := b.lease().DeepCopy()
	l.Annotations[key] = value
	if err := b.kube.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), l, testNS); err != nil {
		b.t.Fatal(err)
	}
}

// peerLease is another agent's Lease, answering at addr.
func peerLease(node, addr string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: agentlease.LeaseName(node), Namespace: testNS,
		Labels: map[string]string{agentlease.NodeLabel: node}, Annotations: map[string]string{agentlease.PeerAddress: addr}}}
}

// responder runs a peer answering with since (and not at all when
// answer is false) on 127.0.0.1; it returns the peer's address.
func responder(t *testing.T, node string, since time.Duration, answer bool) string {
	t.Helper()
	return responderFunc(t, node, func() (time.Duration, bool) { return since, answer })
}

// responderFunc runs a peer whose answers sinceFn gives.
func responderFunc(t *testing.T, node string, sinceFn func() (time.Duration, bool)) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Responder{Node: node, Key: testKey, Metrics: NewMetrics(), Log: logr.Discard(),
		Since: sinceFn}
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })
	return conn.LocalAddr().String()
}

// rogueKey runs a peer that answers "no API" under another key.
func rogueKey(t *testing.T, node string) string {
	t.Helper()
	return craftedPeer(t, func(q request) [][]byte {
		return [][]byte{reply{Node: node, Nonce: q.Nonce, Since: time.Hour}.marshal([]byte("another key, 32 bytes or longer.."))}
	})
}

// craftedPeer runs a peer on 127.0.0.1 that answers each authenticated
// request with the messages answers makes of it; it returns its address.
func craftedPeer(t *testing.T, answers func(q request) [][]byte) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, maxMessage)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q, err := parseRequest(testKey, buf[:n])
			if err != nil {
				continue
			}
			for _, m := range answers(q) {
				_, _ = conn.WriteToUDP(m, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// silentAddr is a UDP address where nobody answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.LocalAddr().String()
}

// lastFeed is the instant of the fake watchdog's last feed.
func (b *bed) lastFeed() time.Time {
	f := b.wd.Feeds()
	if len(f) == 0 {
		b.t.Fatal("the watchdog was never fed")
	}
	return f[len(f)-1]
}

// value is a counter's or a gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
