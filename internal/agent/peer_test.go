package agent

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

func TestMessagesRoundTripAndResistTampering(t *testing.T) {
	n, err := newNonce()
	if err != nil {
		t.Fatal(err)
	}
	q := request{Node: "n1", Nonce: n}
	if got, err := parseRequest(testKey, q.marshal(testKey)); err != nil || got != q {
		t.Errorf("request round trip: %+v %v", got, err)
	}
	r := reply{Node: "n2", Nonce: n, Since: 1234 * time.Millisecond}
	msg := r.marshal(testKey)
	if got, err := parseReply(testKey, msg); err != nil || got != r {
		t.Errorf("reply round trip: %+v %v", got, err)
	}
	for i := range msg {
		bad := bytes.Clone(msg)
		bad[i] ^= 1
		if _, err := parseReply(testKey, bad); err == nil {
			t.Errorf("a reply with byte %d flipped was accepted", i)
		}
	}
	other := bytes.Repeat([]byte("k"), MinKeySize)
	if _, err := parseReply(other, msg); err == nil {
		t.Error("a reply under another key was accepted")
	}
	if _, err := parseReply(testKey, q.marshal(testKey)); err == nil {
		t.Error("a request was accepted as a reply")
	}
	if _, err := parseRequest(testKey, msg); err == nil {
		t.Error("a reply was accepted as a request")
	}
	if _, err := parseReply(testKey, msg[:len(msg)-1]); err == nil {
		t.Error("a truncated reply was accepted")
	}
}

// rogue answers every request at its address with crafted replies: under
// another key, with another nonce, naming a node that was not asked, a
// valid one, and a duplicate of it that says the opposite.
func rogue(t *testing.T) string {
	t.Helper()
	return craftedPeer(t, func(q request) [][]byte {
		other := q.Nonce
		other[0] ^= 1
		return [][]byte{
			reply{Node: "n2", Nonce: q.Nonce, Since: 5 * time.Second}.marshal(bytes.Repeat([]byte("x"), MinKeySize)),
			reply{Node: "n2", Nonce: other, Since: 5 * time.Second}.marshal(testKey),
			reply{Node: "n9", Nonce: q.Nonce, Since: 5 * time.Second}.marshal(testKey),
			reply{Node: "n2", Nonce: q.Nonce, Since: 5 * time.Second}.marshal(testKey),
			reply{Node: "n2", Nonce: q.Nonce, Since: 0}.marshal(testKey),
		}
	})
}

// The asker keeps only authenticated answers to its nonce from a peer it
// asked, once each.
func TestAskerDropsWhatItCannotTrust(t *testing.T) {
	m := NewMetrics()
	a := &Asker{Node: "n1", Key: testKey, Metrics: m, Timeout: 200 * time.Millisecond, APITimeout: 10 * time.Second}
	addr := func(s string) *net.UDPAddr { u, _ := net.ResolveUDPAddr("udp", s); return u }
	answers, err := a.Ask(context.Background(), []Peer{{"n2", addr(rogue(t))}, {"n3", addr(silentAddr(t))}})
	if err != nil {
		t.Fatal(err)
	}
	want := []agentlease.Answer{{Peer: "n2", SinceSuccess: 5 * time.Second, ReachesAPI: false}}
	if len(answers) != 1 || answers[0] != want[0] {
		t.Fatalf("answers %+v, want %+v", answers, want)
	}
	for _, reason := range []string{"unauthenticated", "nonce", "unknown_peer", "duplicate"} {
		if n := value(m.PeerMessagesDropped.WithLabelValues(reason)); n != 1 {
			t.Errorf("dropped %s: %v, want 1", reason, n)
		}
	}
	if sent := value(m.PeerBytesSent); sent == 0 || value(m.PeerBytesReceived) == 0 {
		t.Errorf("bytes sent %v received %v", sent, value(m.PeerBytesReceived))
	}
}

// The responder answers an authenticated question from another node once
// it has renewed; nothing else.
func TestResponderAnswersOnlyAuthenticatedQuestions(t *testing.T) {
	var renewed atomic.Bool
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Responder{Node: "n2", Key: testKey, Metrics: NewMetrics(), Log: logr.Discard(),
		Since: func() (time.Duration, bool) { return 3 * time.Second, renewed.Load() }}
	go func() { _ = r.Serve(ctx, conn) }()
	client, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ask := func(key []byte, node string) (reply, bool) {
		n, _ := newNonce()
		if _, err := client.Write(request{Node: node, Nonce: n}.marshal(key)); err != nil {
			t.Fatal(err)
		}
		_ = client.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		buf := make([]byte, maxMessage)
		k, err := client.Read(buf)
		if err != nil {
			return reply{}, false
		}
		got, err := parseReply(testKey, buf[:k])
		return got, err == nil && got.Nonce == n
	}
	if _, ok := ask(testKey, "n1"); ok {
		t.Error("answered before its first renewal")
	}
	renewed.Store(true)
	if _, ok := ask(bytes.Repeat([]byte("x"), MinKeySize), "n1"); ok {
		t.Error("answered a question under another key")
	}
	if _, ok := ask(testKey, "n2"); ok {
		t.Error("answered a question in its own name")
	}
	if got, ok := ask(testKey, "n1"); !ok || got.Node != "n2" || got.Since != 3*time.Second {
		t.Errorf("answer %+v %v, want n2 3s", got, ok)
	}
	if n := value(r.Metrics.PeerMessagesDropped.WithLabelValues("unauthenticated")); n != 1 {
		t.Errorf("dropped unauthenticated %v", n)
	}
}
