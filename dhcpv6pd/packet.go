package dhcpv6pd

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// The router's data plane is a userspace tunnel: the co-located relay's
// datagrams enter it as whole IPv6 packets from the home address, not
// through a socket. IPv6UDP builds such a packet and ParseIPv6UDP reads the
// home agent's answer out of one.

const (
	ipv6Header = 40
	udpHeader  = 8
	protoUDP   = 17
)

// IPv6UDP returns an IPv6 packet carrying payload in UDP from src to dst,
// with the UDP checksum set (mandatory over IPv6, RFC 8200 §8.1).
func IPv6UDP(src, dst netip.AddrPort, hopLimit uint8, payload []byte) []byte {
	n := udpHeader + len(payload)
	p := make([]byte, ipv6Header+n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n))
	p[6] = protoUDP
	p[7] = hopLimit
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	u := p[ipv6Header:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(n))
	copy(u[udpHeader:], payload)
	c := udpChecksum(p[8:24], p[24:40], u)
	binary.BigEndian.PutUint16(u[6:], c)
	return p
}

func udpChecksum(src, dst, u []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src)
	add(dst)
	sum += uint32(len(u)) + protoUDP
	add(u)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff // RFC 768: a computed 0 is sent as all ones
	}
	return c
}

// ErrNotUDP: the packet is not an IPv6 packet with a UDP header right
// after the fixed header, or its lengths or checksum do not hold.
var ErrNotUDP = errors.New("dhcpv6pd: not a well-formed IPv6/UDP packet")

// ParseIPv6UDP returns the addresses and payload of an IPv6/UDP packet
// (no extension headers: the tunnel delivers the inner packet as the home
// agent sent it to the home address). The payload aliases p.
func ParseIPv6UDP(p []byte) (src, dst netip.AddrPort, payload []byte, err error) {
	if len(p) < ipv6Header+udpHeader || p[0]>>4 != 6 || p[6] != protoUDP {
		return src, dst, nil, ErrNotUDP
	}
	n := int(binary.BigEndian.Uint16(p[4:]))
	if n < udpHeader || ipv6Header+n > len(p) {
		return src, dst, nil, ErrNotUDP
	}
	u := p[ipv6Header : ipv6Header+n]
	if int(binary.BigEndian.Uint16(u[4:])) != n {
		return src, dst, nil, ErrNotUDP
	}
	stored := binary.BigEndian.Uint16(u[6:])
	check := make([]byte, n)
	copy(check, u)
	check[6], check[7] = 0, 0
	if stored == 0 || udpChecksum(p[8:24], p[24:40], check) != stored {
		return src, dst, nil, ErrNotUDP
	}
	src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[8:24])), binary.BigEndian.Uint16(u[0:]))
	dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[24:40])), binary.BigEndian.Uint16(u[2:]))
	return src, dst, u[udpHeader:], nil
}
