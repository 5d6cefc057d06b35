package header

import (
	"encoding/binary"
	"net/netip"
)

// Flow is what a flow rule can match in a packet, IPv6 or IPv4.
type Flow struct {
	Src, Dst netip.Addr
	// Proto is the upper-layer protocol: for IPv6 the Next Header after the
	// extension headers (ProtoNone when there is none).
	Proto uint8
	// SrcPort and DstPort are 0 when the packet has none: a protocol
	// without ports (ICMP, ESP, ...) or a fragment other than the first.
	SrcPort, DstPort uint16
	TC               uint8  // IPv6 traffic class or IPv4 type of service, ECN bits included
	FlowLabel        uint32 // IPv6 only, 20 bits
}

// ParseFlow reads the flow fields of an IPv6 or IPv4 packet, behind the
// version's validity gate. For IPv6 it walks the extension headers; ports
// are read for TCP, UDP, UDP-Lite, SCTP and DCCP, whose first 4 octets they
// are, and not for fragments after the first. A first fragment too short
// to hold the ports is refused.
func ParseFlow(b []byte) (Flow, error) {
	if Version(b) == 4 {
		return parseFlow4(b)
	}
	var f Flow
	p, err := ParseIPv6(b)
	if err != nil {
		return f, err
	}
	f.Src, f.Dst, f.TC, f.FlowLabel = p.Src(), p.Dst(), p.TrafficClass(), p.FlowLabel()
	u, err := Walk(p, nil)
	if err != nil {
		return f, err
	}
	f.Proto = u.Proto
	if u.LaterFragment || !hasPorts(u.Proto) {
		return f, nil
	}
	if u.Off+4 > len(p) {
		return f, errAt("IPv6", "ports", u.Off, "the upper-layer header is shorter than its ports")
	}
	f.SrcPort, f.DstPort = binary.BigEndian.Uint16(p[u.Off:]), binary.BigEndian.Uint16(p[u.Off+2:])
	return f, nil
}

func parseFlow4(b []byte) (Flow, error) {
	var f Flow
	p, err := ParseIPv4(b)
	if err != nil {
		return f, err
	}
	f.Src, f.Dst, f.TC, f.Proto = p.Src(), p.Dst(), p.TOS(), p.Protocol()
	if p.FragmentOffset() != 0 || !hasPorts(f.Proto) {
		return f, nil
	}
	off := p.HeaderLength()
	if off+4 > len(p) {
		return f, errAt("IPv4", "ports", off, "the upper-layer header is shorter than its ports")
	}
	f.SrcPort, f.DstPort = binary.BigEndian.Uint16(p[off:]), binary.BigEndian.Uint16(p[off+2:])
	return f, nil
}
