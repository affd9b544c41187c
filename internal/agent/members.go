package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/agentlease"
)

// listMembers lists the agent Leases (by their node label) and returns the
// peers to ask and the number of agents, this one included.
func (a *Agent) listMembers(ctx context.Context) ([]Peer, int, error) {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.callTimeout())
	defer cancel()
	list, err := a.kube.CoordinationV1().Leases(a.cfg.Namespace).List(cctx, metav1.ListOptions{LabelSelector: agentlease.NodeLabel})
	if err != nil {
		return nil, 0, err
	}
	nodes := map[string]bool{a.cfg.Node: true}
	var peers []Peer
	for i := range list.Items {
		l := &list.Items[i]
		node, ok := agentlease.NodeOf(l.Name)
		if !ok || nodes[node] {
			continue
		}
		nodes[node] = true
		addr, err := resolvePeer(cctx, l.Annotations[agentlease.PeerAddress])
		if err != nil {
			a.log.Info("cannot ask this peer", "peer", node, "err", err.Error())
			continue
		}
		peers = append(peers, Peer{Node: node, Addr: addr})
	}
	return peers, len(nodes), nil
}

// resolvePeer turns a published host:port into a UDP address; a host name
// is resolved within ctx.
func resolvePeer(ctx context.Context, hostport string) (*net.UDPAddr, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return net.UDPAddrFromAddrPort(ap), nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("peer address %q is not host:port", hostport)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("peer address %q: bad port", hostport)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("peer address %q: cannot resolve %s: %v", hostport, host, err)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(p))), nil
}
