package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6MinSize is the size of the fixed IPv6 header.
const IPv6MinSize = 40

// IPv6 is a view of an IPv6 packet. Its accessors trust the length: get
// one from ParseIPv6, which checks it, or build a packet of at least
// IPv6MinSize octets.
type IPv6 []byte

// ParseIPv6 is the validity gate of IPv6 packets: at least the fixed
// header, version 6, and a payload length that fits in b. It returns the
// packet cut to its payload length: octets after it (link-layer padding)
// are not part of the packet.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6MinSize {
		return nil, errAt("IPv6", "header", 0, "is "+itoa(len(b))+" octets, want at least 40")
	}
	if v := Version(b); v != 6 {
		return nil, errAt("IPv6", "version", 0, "is "+itoa(v)+", want 6")
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if IPv6MinSize+plen > len(b) {
		return nil, errAt("IPv6", "payload length", 4, itoa(plen)+" runs past the "+itoa(len(b))+" octets received")
	}
	return IPv6(b[:IPv6MinSize+plen]), nil
}

// TrafficClass is the traffic class octet (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 { return b[0]<<4 | b[1]>>4 }

// FlowLabel is the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return uint32(b[1]&0x0f)<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// PayloadLength is the length of everything after the fixed header.
func (b IPv6) PayloadLength() int { return int(binary.BigEndian.Uint16(b[4:])) }

// NextHeader is the protocol of the first header after the fixed one.
func (b IPv6) NextHeader() uint8 { return b[6] }

// HopLimit is the hop limit.
func (b IPv6) HopLimit() uint8 { return b[7] }

// SetHopLimit sets the hop limit (IPv6 has no header checksum to mend).
func (b IPv6) SetHopLimit(v uint8) { b[7] = v }

// Src is the source address.
func (b IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(b[8:24])) }

// Dst is the destination address.
func (b IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(b[24:40])) }

// Payload is everything after the fixed header.
func (b IPv6) Payload() []byte { return b[IPv6MinSize:] }

// AppendIPv6 appends a fixed IPv6 header for a payload of plen octets.
func AppendIPv6(b []byte, src, dst netip.Addr, next, hopLimit uint8, plen int) []byte {
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, next, hopLimit)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	return append(b, d[:]...)
}

// maxExtHeaders bounds the extension headers a walk goes through, so that
// a packet made of them costs no more than a few ordinary ones. Real
// packets have at most a handful (RFC 8200 §4.1 order: hop-by-hop,
// destination options, routing, fragment, AH, destination options).
const maxExtHeaders = 8

// IsExtension reports whether proto is an IPv6 extension header a walk
// goes through.
func IsExtension(proto uint8) bool {
	switch proto {
	case ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoFragment, ProtoAH:
		return true
	}
	return false
}

// Upper is where a walk over the extension headers ended.
type Upper struct {
	Proto uint8 // the upper-layer protocol (ProtoNone when there is none)
	Off   int   // its offset in the packet
	// LaterFragment: a fragment header with a non-zero offset came first;
	// what follows it is the middle of the original payload, not a header,
	// and Proto is only what the fragment header names.
	LaterFragment bool
}

// Walk goes through the extension headers of p (hop-by-hop options, routing,
// destination options, fragment and authentication headers), calling visit,
// when not nil, with each header's protocol number, its octets and its offset
// in p; an error from visit ends the walk with that error. It refuses
// hop-by-hop options anywhere but first, more than maxExtHeaders headers,
// and a header running past the packet.
func Walk(p IPv6, visit func(proto uint8, h []byte, off int) error) (Upper, error) {
	next, off := p.NextHeader(), IPv6MinSize
	for n := 0; IsExtension(next); n++ {
		if n == maxExtHeaders {
			return Upper{}, errAt("extension header", "count", off, "more than "+itoa(maxExtHeaders))
		}
		if next == ProtoHopByHop && n != 0 {
			return Upper{}, errAt("extension header", "hop-by-hop options", off, "header is not the first extension header")
		}
		if off+8 > len(p) {
			return Upper{}, errAt("extension header", "header", off, "runs past the end of the packet")
		}
		var hlen int
		switch next {
		case ProtoFragment:
			hlen = 8
		case ProtoAH:
			hlen = (int(p[off+1]) + 2) * 4 // RFC 4302 §2.2: in 4-octet units, minus 2
		default:
			hlen = (int(p[off+1]) + 1) * 8
		}
		if off+hlen > len(p) {
			return Upper{}, errAt("extension header", "length", off+1, itoa(hlen)+" octets run past the end of the packet")
		}
		h := p[off : off+hlen]
		if visit != nil {
			if err := visit(next, h, off); err != nil {
				return Upper{}, err
			}
		}
		if next == ProtoFragment && binary.BigEndian.Uint16(h[2:])>>3 != 0 {
			return Upper{Proto: h[0], Off: off + hlen, LaterFragment: true}, nil
		}
		next, off = h[0], off+hlen
	}
	return Upper{Proto: next, Off: off}, nil
}
