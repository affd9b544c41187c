package agent

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/go-logr/logr"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// Peer is another agent: its node and where it answers.
type Peer struct {
	Node string
	Addr *net.UDPAddr
}

// Responder answers the peers' questions on a UDP socket. It answers only
// authenticated questions from another node, and only once this agent has
// renewed its Lease in this process: before that it cannot say anything
// true about its own reach of the API.
type Responder struct {
	Node    string
	Key     []byte
	Metrics *Metrics
	Log     logr.Logger
	// Since is how long ago this agent last renewed its Lease, and false
	// while it has not renewed it yet.
	Since func() (time.Duration, bool)
}

// Serve answers on conn until ctx ends, then closes conn.
func (r *Responder) Serve(ctx context.Context, conn *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	buf := make([]byte, maxMessage+1)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		r.Metrics.PeerBytesReceived.Add(float64(n))
		q, err := parseRequest(r.Key, buf[:n])
		switch {
		case err != nil:
			r.drop("unauthenticated", from)
			continue
		case q.Node == r.Node:
			r.drop("self", from)
			continue
		}
		since, ok := r.Since()
		if !ok {
			r.Metrics.PeerMessagesDropped.WithLabelValues("not_renewed").Inc()
			continue
		}
		msg := reply{Node: r.Node, Nonce: q.Nonce, Since: since}.marshal(r.Key)
		if _, err := conn.WriteToUDP(msg, from); err == nil {
			r.Metrics.PeerBytesSent.Add(float64(len(msg)))
		}
	}
}

func (r *Responder) drop(reason string, from *net.UDPAddr) {
	r.Metrics.PeerMessagesDropped.WithLabelValues(reason).Inc()
	r.Log.V(2).Info("dropped a peer question", "reason", reason, "from", from.String())
}

// Asker asks the peers, all at once, how long ago they last renewed.
type Asker struct {
	Node    string
	Key     []byte
	Metrics *Metrics
	// Timeout bounds one round (wall time: it is a socket deadline).
	Timeout time.Duration
	// APITimeout is this agent's: a peer reaches the API when it renewed
	// within half of it (agentlease.Reaches).
	APITimeout time.Duration
}

// Ask sends one question with a fresh nonce to every peer and collects
// answers until every peer has answered, the timeout passes or ctx ends.
// It keeps only authenticated answers that carry the nonce and come from
// a peer it asked, once each.
func (a *Asker) Ask(ctx context.Context, peers []Peer) ([]agentlease.Answer, error) {
	asked := map[string]bool{}
	for _, p := range peers {
		if p.Node != a.Node && p.Addr != nil {
			asked[p.Node] = false
		}
	}
	if len(asked) == 0 {
		return nil, nil
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(a.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	msg := request{Node: a.Node, Nonce: nonce}.marshal(a.Key)
	for _, p := range peers {
		if _, ok := asked[p.Node]; ok && p.Node != a.Node {
			if _, err := conn.WriteToUDP(msg, p.Addr); err == nil {
				a.Metrics.PeerBytesSent.Add(float64(len(msg)))
			}
		}
	}
	return a.collect(ctx, conn, nonce, asked), nil
}

// collect reads answers to nonce until every asked peer has answered or
// the socket's deadline passes.
func (a *Asker) collect(ctx context.Context, conn *net.UDPConn, nonce Nonce, asked map[string]bool) []agentlease.Answer {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var answers []agentlease.Answer
	buf := make([]byte, maxMessage+1)
	for pending := len(asked); pending > 0; {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				break
			}
			continue
		}
		a.Metrics.PeerBytesReceived.Add(float64(n))
		r, err := parseReply(a.Key, buf[:n])
		if reason := a.check(r, err, nonce, asked); reason != "" {
			a.Metrics.PeerMessagesDropped.WithLabelValues(reason).Inc()
			continue
		}
		asked[r.Node] = true
		pending--
		answers = append(answers, agentlease.Answer{Peer: r.Node, SinceSuccess: r.Since,
			ReachesAPI: agentlease.Reaches(r.Since, a.APITimeout)})
	}
	return answers
}

// check says why an answer is dropped, or "" when it counts.
func (a *Asker) check(r reply, err error, nonce Nonce, asked map[string]bool) string {
	switch answered, known := asked[r.Node]; {
	case err != nil:
		return "unauthenticated"
	case r.Nonce != nonce:
		return "nonce"
	case !known:
		return "unknown_peer"
	case answered:
		return "duplicate"
	}
	return ""
}
