// Package agent is the liberator agent: one per node, it holds the node's
// watchdog and feeds it only while it can prove that it reaches the API
// server, or that the API server is down for a quorum of agents. It
// publishes its bounds on its agent Lease (internal/agentlease), stops
// feeding when it is cut off, and stops feeding, then acknowledges, when
// the controller asks it to fence its node. docs/agent.md describes it;
// docs/design.md gives the timing argument.
//
// Everything that decides whether to feed runs in one goroutine (Run's
// loop), so a hung loop is a reset.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// Deps are what the agent uses of the outside world.
type Deps struct {
	Kube  kubernetes.Interface
	Clock clock.Clock
	// OpenWatchdog opens the watchdog device (OpenWatchdog by default).
	OpenWatchdog func(device string) (Watchdog, error)
	Log          logr.Logger
	Metrics      *Metrics
}

// Agent is one node's agent. Its fields are owned by the loop goroutine,
// except those under mu, which the peer responder and the health
// endpoints read.
type Agent struct {
	cfg    Config
	kube   kubernetes.Interface
	clock  clock.Clock
	open   func(string) (Watchdog, error)
	log    logr.Logger
	m      *Metrics
	asker  *Asker
	bootID string

	wd     Watchdog
	bounds agentlease.Bounds
	// lastSuccess is the start of the last successful renewal: never
	// later than the write the controller sees.
	lastSuccess  time.Time
	lastAttempt  time.Time
	renewFailing bool
	fenced       bool
	fenceReason  string
	idleLogged   bool
	ackLogged    string

	// memMu guards the membership, which a refresh in the background
	// writes: membersKnown, maxMembers, peers.
	memMu        sync.Mutex
	membersKnown bool
	maxMembers   int
	peers        []Peer
	// grewAt is when maxMembers last grew (or the first listing).
	grewAt      time.Time
	lastMembers time.Time
	refreshing  atomic.Bool

	// renewed is the fingerprint of the last renewal the API server
	// answered, published with the next one (agentlease.Renewed).
	renewed string

	mu sync.Mutex
	// successEnd is when the last successful renewal returned: never
	// earlier than its write. Peers are told the time since then.
	successEnd    time.Time
	haveSuccess   bool
	lastIteration time.Time
	ready         bool
}

// New checks cfg and builds an agent.
func New(cfg Config, d Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.OpenWatchdog == nil {
		d.OpenWatchdog = OpenWatchdog
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	a := &Agent{cfg: cfg, kube: d.Kube, clock: d.Clock, open: d.OpenWatchdog, log: d.Log, m: d.Metrics,
		bounds: cfg.Bounds, maxMembers: 1}
	a.asker = &Asker{Node: cfg.Node, Key: cfg.PeerKey, Metrics: d.Metrics, Timeout: cfg.Bounds.PeerTimeout,
		APITimeout: cfg.Bounds.APITimeout}
	return a, nil
}

// Run runs the agent until ctx ends (SIGTERM, SIGINT), then stops: with
// the magic close when it could publish armed=false first, else leaving
// the watchdog running. It returns an error, before arming anything, when
// the boot ID, the peer socket or the health address is unusable, and
// when the watchdog cannot be opened or accepts an unusable timeout.
func (a *Agent) Run(ctx context.Context) error {
	var err error
	if a.bootID, err = ReadBootID(a.cfg.BootIDFile); err != nil {
		return err
	}
	laddr, err := net.ResolveUDPAddr("udp", a.cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("--peer-listen %q: %w", a.cfg.PeerListen, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("--peer-listen %s: %w", a.cfg.PeerListen, err)
	}
	sctx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	if err := a.serveHealth(sctx); err != nil {
		_ = conn.Close()
		return err
	}
	r := &Responder{Node: a.cfg.Node, Key: a.cfg.PeerKey, Metrics: a.m, Log: a.log, Since: a.sinceSuccess}
	go func() { _ = r.Serve(sctx, conn) }()
	a.log.Info("starting liberator agent", "node", a.cfg.Node, "bootID", a.bootID, "watchdog", a.cfg.WatchdogDevice,
		"peerAddress", a.cfg.PeerAddress, "isolationBound", a.cfg.Bounds.Isolation())
	if err := a.start(ctx); err != nil || a.wd == nil {
		return err
	}
	a.loop(ctx)
	a.stop()
	return nil
}

// loop runs an iteration every check interval until ctx ends. An
// iteration under way when ctx ends runs to its end (its calls are bounded
// anyway): a stop must not read as a failed round of questions.
func (a *Agent) loop(ctx context.Context) {
	next := a.clock.Now()
	ictx := context.WithoutCancel(ctx)
	for {
		a.iterate(ictx)
		next = next.Add(a.bounds.CheckInterval)
		wait := next.Sub(a.clock.Now())
		if wait < 0 {
			next, wait = a.clock.Now(), 0
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// start waits, every check interval, until the agent knows its peers and
// has renewed its Lease, then opens and arms the watchdog: a starting
// agent never feeds on the strength of an earlier process's renewals.
// It returns with a.wd nil when ctx ends first.
func (a *Agent) start(ctx context.Context) error {
	for {
		a.markIteration()
		if !a.knowsMembers() {
			a.lastMembers = a.clock.Now()
			a.refreshMembers(ctx)
		}
		if a.knowsMembers() {
			if err := a.firstRenewal(ctx); err != nil || a.wd != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(a.bounds.CheckInterval):
		}
	}
}

// arm opens the watchdog and sets its timeout; the bounds published from
// then on carry the timeout the device accepted. An accepted timeout that
// makes the bounds unusable disarms it again (armed=false is what the
// Lease says at that point) and is an error, unless the watchdog is armed
// to honour a fence request: then it stays armed, unfed, and the accepted
// timeout is published with the acknowledgement.
func (a *Agent) arm(forFence bool) error {
	wd, err := a.open(a.cfg.WatchdogDevice)
	if err != nil {
		return fmt.Errorf("--watchdog-device: %w", err)
	}
	got, err := wd.Arm(a.cfg.Bounds.WatchdogTimeout)
	if err == nil {
		b := a.cfg.Bounds
		b.WatchdogTimeout = got
		if err = checkBounds(b); err != nil && !forFence {
			err = fmt.Errorf("the watchdog accepted a timeout of %s instead of %s: %w", got, a.cfg.Bounds.WatchdogTimeout, err)
		} else {
			err = nil
		}
		a.bounds = b
	}
	if err != nil {
		return errors.Join(err, wd.MagicClose())
	}
	a.wd = wd
	a.m.Armed.Set(1)
	a.log.Info("armed the watchdog", "timeout", got, "isolationBound", a.bounds.Isolation())
	return nil
}

// feed feeds the watchdog. The loop's iteration is the only caller.
func (a *Agent) feed() {
	if err := a.wd.Feed(); err != nil {
		a.log.Error(err, "cannot feed the watchdog")
		return
	}
	a.m.Feeds.Inc()
}

// fence stops feeding the watchdog for good; the node resets within the
// watchdog timeout. It logs once, at error level.
func (a *Agent) fence(cause, reason string) {
	if a.fenced {
		return
	}
	a.fenced, a.fenceReason = true, cause+": "+reason
	a.m.Fenced.Set(1)
	a.m.SelfFences.WithLabelValues(cause).Inc()
	a.setReady(false)
	a.log.Error(nil, "stopped feeding the watchdog for good: the node resets within the watchdog timeout",
		"cause", cause, "reason", reason, "watchdogTimeout", a.bounds.WatchdogTimeout)
}

// sinceSuccess is what the agent tells its peers.
func (a *Agent) sinceSuccess() (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.haveSuccess {
		return 0, false
	}
	return a.clock.Since(a.successEnd), true
}

func (a *Agent) recordSuccess(end time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.successEnd, a.haveSuccess = end, true
}

func (a *Agent) markIteration() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastIteration = a.clock.Now()
}

func (a *Agent) setReady(r bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ready = r
}

// serveHealth serves /healthz (the loop ran within the watchdog timeout),
// /readyz (armed and feeding) and /metrics on the health address.
func (a *Agent) serveHealth(ctx context.Context) error {
	if a.cfg.HealthAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.HealthAddr)
	if err != nil {
		return fmt.Errorf("--health-addr %s: %w", a.cfg.HealthAddr, err)
	}
	srv := &http.Server{Handler: a.healthMux(), ReadHeaderTimeout: 5 * time.Second}
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	go func() { _ = srv.Serve(ln) }()
	return nil
}
