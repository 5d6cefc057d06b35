package nemo

import (
	"net/netip"

	"nemod/header"
)

// HeartbeatPacketLen is the length of a Heartbeat packet without options,
// every probe nemod sends: the IPv6 header and the 12-octet message
// padded to 16 (Mobility Headers are a multiple of 8 octets long).
const HeartbeatPacketLen = header.IPv6MinSize + 16

// AppendHeartbeatPacket appends an IPv6 packet from src to dst carrying hb
// (RFC 5847 §5.1), its checksum set. The same packet is
// a native path's liveness probe (sent as is) and a UDP path's (the
// payload of a datagram to port 4191, as RFC 5555 §4.4 frames an IPv6
// packet there): a decoder told that the port carries IPv6 sees a
// well-formed Heartbeat either way.
func AppendHeartbeatPacket(b []byte, src, dst netip.Addr, hb *Heartbeat) ([]byte, error) {
	var mh [32]byte
	m, err := AppendMessage(mh[:0], hb)
	if err != nil {
		return b, err
	}
	return AppendPacket(b, src, dst, netip.Addr{}, netip.Addr{}, DefaultHopLimit, m)
}

// IsHeartbeatPacket reports whether p looks like an IPv6 packet to dst
// whose first next header is a Heartbeat: the cheap test the data planes
// run on every UDP datagram before the full decode.
func IsHeartbeatPacket(p []byte, dst netip.Addr) bool {
	if len(p) < header.IPv6MinSize+8 || header.Version(p) != 6 || p[6] != header.ProtoMH || p[header.IPv6MinSize+2] != TypeHeartbeat {
		return false
	}
	return header.IPv6(p).Dst() == dst
}

// ParseHeartbeatPacket decodes an IPv6 packet carrying a Heartbeat right
// behind the IPv6 header, checking its length and checksum, into hb. It
// returns the packet's source.
func ParseHeartbeatPacket(p []byte, hb *Heartbeat) (netip.Addr, error) {
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return netip.Addr{}, fromHeader("Heartbeat packet", err)
	}
	if ip.NextHeader() != header.ProtoMH {
		return netip.Addr{}, errAt("Heartbeat packet", "next header", 6, itoa(int(ip.NextHeader()))+" is not 135")
	}
	mh := ip.Payload()
	if err := Unmarshal(mh, hb); err != nil {
		return netip.Addr{}, err
	}
	if !VerifyChecksum(mh, ip.Src(), ip.Dst()) {
		return netip.Addr{}, ErrChecksum
	}
	return ip.Src(), nil
}
