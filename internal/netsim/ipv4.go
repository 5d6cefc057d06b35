package netsim

import (
	"encoding/binary"
	"net/netip"

	"nemod/header"
	"nemod/tunnel"
)

// RouteNetwork4 implements tunnel.RouterSystem.
func (s *RouterSystem) RouteNetwork4(r tunnel.NetworkRoutes4) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes4 = r
	return nil
}

// Routes4 is what RouteNetwork4 was last given.
func (s *RouterSystem) Routes4() tunnel.NetworkRoutes4 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes4
}

// Forwarding4 implements tunnel.RouterSystem.
func (s *RouterSystem) Forwarding4() bool { return !s.NoForwarding }

// Masquerade4 implements tunnel.AgentSystem.
func (s *AgentSystem) Masquerade4(device string, prefixes []netip.Prefix, to netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.masq4 = append([]netip.Prefix(nil), prefixes...)
	s.masqTo = to
	return nil
}

// Masqueraded is what Masquerade4 was last given.
func (s *AgentSystem) Masqueraded() ([]netip.Prefix, netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Prefix(nil), s.masq4...), s.masqTo
}

// UDP4 builds an IPv4 UDP packet with a payload of n octets, each the tag,
// with the DF flag set when df.
func UDP4(src, dst netip.Addr, sport, dport uint16, n int, tag byte, df bool) []byte {
	u := make([]byte, header.UDPSize+n)
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	for i := header.UDPSize; i < len(u); i++ {
		u[i] = tag
	}
	header.UDP(u).SetChecksum(header.TransportChecksum(src, dst, header.ProtoUDP, u))
	p := header.AppendIPv4(nil, src, dst, header.ProtoUDP, 64, len(u))
	if df {
		p[6] = 0x40
		header.IPv4(p).SetChecksum()
	}
	return append(p, u...)
}

// Host is the host the link belongs to.
func (l *Link) Host() *Host { return l.host }
