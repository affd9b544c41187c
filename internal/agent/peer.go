package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"
)

// The peer protocol: UDP datagrams, each authenticated with HMAC-SHA256
// over everything before the MAC, with the key all agents share.
//
//	request: "LBQ1" | nonce (16) | len(name) (1) | name | mac (32)
//	reply:   "LBA1" | nonce (16) | since (8, ms, big endian) | len(name) (1) | name | mac (32)
//
// A request names the asking node and carries a fresh nonce; a reply names
// the answering node, repeats the nonce and says how long ago, on the
// answerer's monotonic clock, it last renewed its Lease. The two kinds have
// different tags, so one can never be taken for the other.
const (
	nonceSize   = 16
	macSize     = sha256.Size
	maxNameSize = 253
	// MinKeySize is the shortest shared key the agent accepts.
	MinKeySize = 32
	maxMessage = 4 + nonceSize + 8 + 1 + maxNameSize + macSize
)

var (
	requestTag = []byte("LBQ1")
	replyTag   = []byte("LBA1")
)

// Nonce is a request's fresh random number.
type Nonce [nonceSize]byte

// newNonce draws a fresh nonce.
func newNonce() (Nonce, error) {
	var n Nonce
	_, err := rand.Read(n[:])
	return n, err
}

// request is one "do you reach the API?" question.
type request struct {
	Node  string
	Nonce Nonce
}

// reply is one answer.
type reply struct {
	Node  string
	Nonce Nonce
	Since time.Duration
}

var errBadMessage = errors.New("not an authenticated message of the peer protocol")

func seal(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(body)
}

// open checks msg's tag and MAC and returns the body between them.
func open(key, msg, tag []byte) ([]byte, error) {
	if len(msg) < len(tag)+macSize || string(msg[:len(tag)]) != string(tag) {
		return nil, errBadMessage
	}
	body, mac := msg[:len(msg)-macSize], msg[len(msg)-macSize:]
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return nil, errBadMessage
	}
	return body[len(tag):], nil
}

func appendName(b []byte, name string) []byte {
	return append(append(b, byte(len(name))), name...)
}

// readName reads a length-prefixed name that must end the body.
func readName(b []byte) (string, error) {
	if len(b) < 1 || int(b[0]) != len(b)-1 || b[0] == 0 {
		return "", errBadMessage
	}
	return string(b[1:]), nil
}

func (q request) marshal(key []byte) []byte {
	b := append(append([]byte{}, requestTag...), q.Nonce[:]...)
	return seal(key, appendName(b, q.Node))
}

func parseRequest(key, msg []byte) (request, error) {
	body, err := open(key, msg, requestTag)
	if err != nil || len(body) < nonceSize {
		return request{}, errBadMessage
	}
	var q request
	copy(q.Nonce[:], body)
	q.Node, err = readName(body[nonceSize:])
	return q, err
}

func (r reply) marshal(key []byte) []byte {
	b := append(append([]byte{}, replyTag...), r.Nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Since/time.Millisecond))
	return seal(key, appendName(b, r.Node))
}

func parseReply(key, msg []byte) (reply, error) {
	body, err := open(key, msg, replyTag)
	if err != nil || len(body) < nonceSize+8 {
		return reply{}, errBadMessage
	}
	var r reply
	copy(r.Nonce[:], body)
	ms := binary.BigEndian.Uint64(body[nonceSize:])
	if ms > uint64(time.Duration(1<<62)/time.Millisecond) {
		return reply{}, errBadMessage
	}
	r.Since = time.Duration(ms) * time.Millisecond
	r.Node, err = readName(body[nonceSize+8:])
	return r, err
}
