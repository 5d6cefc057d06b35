package nemo

import "encoding/binary"

// UDPFrame is what a datagram to or from the DSMIPv6 port carries
// (RFC 5555 §4.4): an IPv6 or an IPv4 packet, told apart by the IP version
// nibble. Version 0 marks nemod's own liveness probes (see package tunnel);
// no IP packet starts with it. Packet aliases the datagram.
type UDPFrame struct {
	Version int // 6, 4 or 0
	Packet  []byte
}

// ParseUDPPayload classifies a DSMIPv6 UDP payload and checks that an IP
// packet's header and length fit the datagram. Octets beyond the packet's
// own length are cut off.
func ParseUDPPayload(p []byte) (UDPFrame, error) {
	const msg = "UDP payload"
	if len(p) == 0 {
		return UDPFrame{}, errAt(msg, "length", 0, "is empty")
	}
	switch v := int(p[0] >> 4); v {
	case 6:
		if len(p) < 40 {
			return UDPFrame{}, errAt(msg, "IPv6 header", 0, "is "+itoa(len(p))+" octets, want at least 40")
		}
		n := 40 + int(binary.BigEndian.Uint16(p[4:]))
		if n > len(p) {
			return UDPFrame{}, errAt(msg, "IPv6 payload length", 4, "runs past the datagram")
		}
		return UDPFrame{Version: 6, Packet: p[:n]}, nil
	case 4:
		if len(p) < 20 {
			return UDPFrame{}, errAt(msg, "IPv4 header", 0, "is "+itoa(len(p))+" octets, want at least 20")
		}
		ihl := int(p[0]&0x0f) * 4
		n := int(binary.BigEndian.Uint16(p[2:]))
		if ihl < 20 || n < ihl || n > len(p) {
			return UDPFrame{}, errAt(msg, "IPv4 total length", 2, "does not fit the datagram")
		}
		return UDPFrame{Version: 4, Packet: p[:n]}, nil
	case 0:
		return UDPFrame{Version: 0, Packet: p}, nil
	default:
		return UDPFrame{}, errAt(msg, "IP version", 0, itoa(v)+" is neither 4 nor 6")
	}
}
