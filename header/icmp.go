package header

import (
	"encoding/binary"
	"net/netip"
)

// ICMP message types the data plane sends.
const (
	ICMPv6PacketTooBig   = 2 // RFC 4443 §3.2
	ICMPv4DestUnreach    = 3 // RFC 792
	ICMPv4FragNeeded     = 4 // code of ICMPv4DestUnreach (RFC 1191)
	ICMPv6MinMTU         = 1280
	icmpErrorQuoteLimit6 = ICMPv6MinMTU - IPv6MinSize - 8
)

// AppendPacketTooBig appends an ICMPv6 Packet Too Big (RFC 4443 §3.2) from
// src to the source of orig, telling it the mtu, and quoting as much of orig
// as keeps the error within the IPv6 minimum MTU.
func AppendPacketTooBig(b []byte, src netip.Addr, orig IPv6, mtu int) []byte {
	quote := orig[:min(len(orig), icmpErrorQuoteLimit6)]
	dst := orig.Src()
	b = AppendIPv6(b, src, dst, ProtoICMPv6, 255, 8+len(quote))
	start := len(b)
	b = append(b, ICMPv6PacketTooBig, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(mtu))
	b = append(b, quote...)
	binary.BigEndian.PutUint16(b[start+2:], TransportChecksum(src, dst, ProtoICMPv6, b[start:]))
	return b
}

// AppendFragmentationNeeded appends an ICMP Destination Unreachable,
// fragmentation needed (RFC 1191) from src to the source of orig, telling
// it the mtu, and quoting orig's header and the first 8 octets after it
// (RFC 792).
func AppendFragmentationNeeded(b []byte, src netip.Addr, orig IPv4, mtu int) []byte {
	quote := orig[:min(len(orig), orig.HeaderLength()+8)]
	b = AppendIPv4(b, src, orig.Src(), ProtoICMP, 64, 8+len(quote))
	start := len(b)
	b = append(b, ICMPv4DestUnreach, ICMPv4FragNeeded, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(mtu))
	b = append(b, quote...)
	binary.BigEndian.PutUint16(b[start+2:], Checksum(b[start:], 0))
	return b
}
