// Package agentlease is the contract between the liberator agent on each
// node and the controller: the per-node Lease on which an agent publishes
// that it is armed and the bounds it guarantees, on which the controller
// asks it to fence its node, and on which the agent acknowledges.
//
// The Lease is named LeaseName(node) in the agent's namespace (tkr-system
// by default). The agent renews spec.renewTime every renew interval; every
// other field is an annotation with the prefix "agent.liberator.dev/".
package agentlease

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Prefix is the name prefix of agent Leases; the rest is the node name.
const Prefix = "liberator-agent-"

// LeaseName is the name of node's agent Lease.
func LeaseName(node string) string { return Prefix + node }

// NodeOf returns the node of an agent Lease name, and whether the name is
// one.
func NodeOf(leaseName string) (string, bool) {
	n, ok := strings.CutPrefix(leaseName, Prefix)
	return n, ok && n != ""
}

// NodeLabel is on every agent Lease, with the node's name as its value, so
// that the controller can watch agent Leases by label selector.
const NodeLabel = "agent.liberator.dev/node"

// Defaults of the agent's bounds: an isolation bound of 26 s, under the
// controller's 40 s window, with a watchdog timeout common on servers. The
// API timeout leaves the controller room to count a healthy agent fresh
// with a 2 s margin: half of it less the margin exceeds two renew
// intervals.
var DefaultBounds = Bounds{
	WatchdogTimeout: 10 * time.Second,
	CheckInterval:   time.Second,
	RenewInterval:   2 * time.Second,
	APITimeout:      14 * time.Second,
	PeerTimeout:     time.Second,
}

// DefaultPeerPort is the UDP port agents answer their peers on.
const DefaultPeerPort = 9447

// Annotation keys. The agent writes every key but FenceRequest; the
// controller writes FenceRequest only.
const (
	annPrefix = "agent.liberator.dev/"
	// Armed is "true" while the agent holds the watchdog and feeds it, and
	// "false" once it has stopped cleanly (magic close).
	Armed = annPrefix + "armed"
	// WatchdogTimeout is the timeout the watchdog device acknowledged.
	WatchdogTimeout = annPrefix + "watchdog-timeout"
	// CheckInterval is how often the agent retries the API while it fails.
	CheckInterval = annPrefix + "check-interval"
	// RenewInterval is how often the agent renews this Lease.
	RenewInterval = annPrefix + "renew-interval"
	// APITimeout is how long the agent goes without a successful renewal
	// before it asks its peers (and, unless a quorum of them cannot reach
	// the API either, stops feeding the watchdog).
	APITimeout = annPrefix + "api-timeout"
	// PeerTimeout bounds one round of questions to the peers.
	PeerTimeout = annPrefix + "peer-timeout"
	// Quorum is how many agents, the asking one included, must answer that
	// they cannot reach the API either for the agent to keep running
	// without it: a majority of the largest membership the agent has seen.
	Quorum = annPrefix + "quorum"
	// PeerAddress is host:port where the agent answers its peers (UDP).
	PeerAddress = annPrefix + "peer-address"
	// BootID is the node's boot ID as the agent read it.
	BootID = annPrefix + "boot-id"
	// FenceRequest is written by the controller: the name of the Takeover
	// that asks this node's agent to fence its node.
	FenceRequest = annPrefix + "fence-request"
	// Renewed is the renewTime (Fingerprint) of the agent's last renewal
	// that it knows landed: the API server answered it. It is written with
	// the next renewal. A write can land after the agent gave up on it, so
	// the controller counts an agent fresh only from when it saw a renewal
	// that a later one confirms this way.
	Renewed = annPrefix + "renewed"
	// FenceAck is written by the agent once it has stopped feeding the
	// watchdog for the request of that name: the Takeover's name.
	FenceAck = annPrefix + "fence-ack"
)

// Bounds are the timing guarantees an agent publishes.
type Bounds struct {
	WatchdogTimeout time.Duration
	CheckInterval   time.Duration
	RenewInterval   time.Duration
	APITimeout      time.Duration
	PeerTimeout     time.Duration
}

// Isolation is how long after its last successful renewal an agent that
// is cut off has stopped feeding the watchdog and the watchdog has reset
// the node: the API timeout, one check interval of granularity, one round
// of questions to the peers, then the watchdog's timeout. A margin for
// clock rates and delivery delays is the controller's to add.
func (b Bounds) Isolation() time.Duration {
	return b.APITimeout + b.CheckInterval + b.PeerTimeout + b.WatchdogTimeout
}

// Validate says what makes the bounds unusable, in one line.
func (b Bounds) Validate() error {
	switch {
	case b.WatchdogTimeout <= 0:
		return fmt.Errorf("watchdog timeout %s must be positive", b.WatchdogTimeout)
	case b.CheckInterval <= 0:
		return fmt.Errorf("check interval %s must be positive", b.CheckInterval)
	case b.RenewInterval <= 0:
		return fmt.Errorf("renew interval %s must be positive", b.RenewInterval)
	case b.PeerTimeout <= 0:
		return fmt.Errorf("peer timeout %s must be positive", b.PeerTimeout)
	case b.APITimeout < 2*b.RenewInterval+6*b.CheckInterval:
		return fmt.Errorf("API timeout %s must be at least twice the renew interval %s plus six check intervals of %s, or peers would tell an API outage from isolation wrongly", b.APITimeout, b.RenewInterval, b.CheckInterval)
	case b.CheckInterval > b.RenewInterval:
		return fmt.Errorf("check interval %s must not exceed the renew interval %s", b.CheckInterval, b.RenewInterval)
	}
	return nil
}

// Published is what one agent Lease says.
type Published struct {
	Node  string
	Armed bool
	Bounds
	Quorum       int
	PeerAddress  string
	BootID       string
	FenceRequest string
	FenceAck     string
	// Renewed is the agent's confirmation of its previous renewal (a
	// RenewTime fingerprint), empty when it has none.
	Renewed string
	// RenewTime is spec.renewTime in its exact text form (a fingerprint
	// for comparisons, never a clock reading of ours).
	RenewTime string
}

// Parse reads an agent Lease. A Lease that is not an agent Lease, or whose
// annotations do not parse, is an error naming the key.
func Parse(l *coordinationv1.Lease) (Published, error) {
	node, ok := NodeOf(l.Name)
	if !ok {
		return Published{}, fmt.Errorf("lease %s/%s is not an agent Lease (want the name prefix %s)", l.Namespace, l.Name, Prefix)
	}
	a := l.Annotations
	p := Published{Node: node, Armed: a[Armed] == "true", PeerAddress: a[PeerAddress], BootID: a[BootID],
		FenceRequest: a[FenceRequest], FenceAck: a[FenceAck], Renewed: a[Renewed], RenewTime: Fingerprint(l)}
	var err error
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{
		{WatchdogTimeout, &p.WatchdogTimeout}, {CheckInterval, &p.CheckInterval}, {RenewInterval, &p.RenewInterval},
		{APITimeout, &p.APITimeout}, {PeerTimeout, &p.PeerTimeout},
	} {
		if *d.to, err = time.ParseDuration(a[d.key]); err != nil {
			return p, fmt.Errorf("agent Lease %s: annotation %s=%q is not a duration", l.Name, d.key, a[d.key])
		}
	}
	if p.Quorum, err = strconv.Atoi(a[Quorum]); err != nil || p.Quorum < 1 {
		return p, fmt.Errorf("agent Lease %s: annotation %s=%q is not a positive count", l.Name, Quorum, a[Quorum])
	}
	return p, nil
}

// Apply writes everything the agent publishes onto l's annotations (not
// FenceRequest, which is the controller's, and not the renew time).
func (p Published) Apply(l *coordinationv1.Lease) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[NodeLabel] = p.Node
	a := l.Annotations
	a[Armed] = strconv.FormatBool(p.Armed)
	a[WatchdogTimeout] = p.WatchdogTimeout.String()
	a[CheckInterval] = p.CheckInterval.String()
	a[RenewInterval] = p.RenewInterval.String()
	a[APITimeout] = p.APITimeout.String()
	a[PeerTimeout] = p.PeerTimeout.String()
	a[Quorum] = strconv.Itoa(p.Quorum)
	a[PeerAddress] = p.PeerAddress
	a[BootID] = p.BootID
	if p.FenceAck != "" {
		a[FenceAck] = p.FenceAck
	} else {
		delete(a, FenceAck)
	}
	if p.Renewed != "" {
		a[Renewed] = p.Renewed
	} else {
		delete(a, Renewed)
	}
}

// Fingerprint is l's spec.renewTime in its exact text form, empty when it
// has none: compared for equality only, never read as a clock.
func Fingerprint(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.RenewTime == nil {
		return ""
	}
	return l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
}

// QuorumOf is the quorum for a membership of n agents: a strict majority.
func QuorumOf(n int) int { return n/2 + 1 }

// Answer is one peer's answer to "do you reach the API?".
type Answer struct {
	Peer string
	// SinceSuccess is how long ago, on the peer's clock, the peer last
	// renewed its Lease.
	SinceSuccess time.Duration
	// ReachesAPI is what the asking agent makes of it: SinceSuccess is
	// under half its own API timeout (see Reaches).
	ReachesAPI bool
}

// Reaches is the asking agent's reading of a peer's answer: the peer
// renewed within half the asker's API timeout. Half, because the asker asks
// no sooner than its API timeout less two check intervals after its own
// last renewal, and an outage that began after that renewal began at most
// one renew interval and one check interval (an attempt's timeout) after
// it: the peer's last renewal is then at least the API timeout less a
// renew interval and three check intervals old, which Validate keeps at
// half the API timeout or more.
func Reaches(sinceSuccess, askerAPITimeout time.Duration) bool {
	return sinceSuccess < askerAPITimeout/2
}

// StayUp decides, for an agent that has not reached the API for its API
// timeout, whether it keeps feeding the watchdog. It does only when the
// API is down for everyone it can see: no answer says a peer reaches the
// API, and the agent itself plus the peers that answered make the quorum.
// Anything else means this node is the one cut off, and it self-fences.
func StayUp(quorum int, answers []Answer) (bool, string) {
	for _, a := range answers {
		if a.ReachesAPI {
			return false, fmt.Sprintf("peer %s reaches the API and this node does not", a.Peer)
		}
	}
	if have := len(answers) + 1; have < quorum {
		return false, fmt.Sprintf("only %d of the %d agents needed answered: this node is cut off", have, quorum)
	}
	return true, fmt.Sprintf("%d agents answered and none reaches the API: the API is down for everyone", len(answers)+1)
}
