package policy

import (
	"encoding/binary"
	"net/netip"
)

// Packet is what a rule can match in an IPv6 packet.
type Packet struct {
	Src, Dst netip.Addr
	// Proto is the upper-layer protocol: the Next Header after the
	// extension headers ParsePacket skips (59 when there is none).
	Proto uint8
	// SrcPort and DstPort are 0 when the packet has none: a protocol
	// without ports (ICMPv6, ESP, ...) or a fragment other than the first.
	SrcPort, DstPort uint16
	TC               uint8  // the whole traffic class octet, ECN bits included
	FlowLabel        uint32 // 20 bits
}

// IPv6 extension headers and upper-layer protocols ParsePacket knows.
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoDCCP     = 33
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoICMPv6   = 58
	protoDstOpts  = 60
	protoSCTP     = 132
	protoUDPLite  = 136
)

// maxExtHeaders bounds the extension headers ParsePacket walks through, so
// that a packet made of them costs no more than a few ordinary ones. Real
// packets have at most a handful (RFC 8200 §4.1 order: hop-by-hop,
// destination options, routing, fragment, AH, destination options).
const maxExtHeaders = 8

// ParsePacket reads the fields rules match from an IPv6 packet, skipping
// hop-by-hop, routing, destination options, fragment and authentication
// headers. Ports are read for TCP, UDP, UDP-Lite, SCTP and DCCP, whose first
// 4 octets they are, and not for fragments after the first. It returns false
// for what is not a well-formed IPv6 packet: short, not version 6, a payload
// length past the buffer, a header running past the payload, hop-by-hop
// options not first, more than maxExtHeaders extension headers, or a first
// fragment too short to hold the ports. Octets after the payload length
// (link-layer padding) are ignored.
func ParsePacket(b []byte) (Packet, bool) {
	var p Packet
	if len(b) < 40 || b[0]>>4 != 6 {
		return p, false
	}
	end := 40 + int(binary.BigEndian.Uint16(b[4:]))
	if end > len(b) {
		return p, false
	}
	b = b[:end]
	p.TC = b[0]<<4 | b[1]>>4
	p.FlowLabel = uint32(b[1]&0x0f)<<16 | uint32(b[2])<<8 | uint32(b[3])
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	next, off := b[6], 40
	for n := 0; ; n++ {
		switch next {
		case protoHopByHop, protoRouting, protoDstOpts, protoFragment, protoAH:
		case protoTCP, protoUDP, protoUDPLite, protoSCTP, protoDCCP:
			if off+4 > len(b) {
				return p, false
			}
			p.Proto = next
			p.SrcPort = binary.BigEndian.Uint16(b[off:])
			p.DstPort = binary.BigEndian.Uint16(b[off+2:])
			return p, true
		default:
			p.Proto = next
			return p, true
		}
		if n == maxExtHeaders || next == protoHopByHop && n != 0 || off+8 > len(b) {
			return p, false
		}
		var hlen int
		switch next {
		case protoFragment:
			if binary.BigEndian.Uint16(b[off+2:])>>3 != 0 {
				// A later fragment: what follows is the middle of the
				// original payload, not a header.
				p.Proto = b[off]
				return p, true
			}
			hlen = 8
		case protoAH:
			hlen = (int(b[off+1]) + 2) * 4 // RFC 4302 §2.2: in 4-octet units, minus 2
		default:
			hlen = (int(b[off+1]) + 1) * 8
		}
		if off+hlen > len(b) {
			return p, false
		}
		next, off = b[off], off+hlen
	}
}
