// Package header is nemod's one view of IP packets: typed views over the
// bytes (IPv6, IPv4, UDP) with accessors, one validity gate per header
// (ParseIPv6, ParseIPv4) that every other accessor may then trust, one
// walker over IPv6 extension headers, the flow fields rules match, the
// Internet checksum, and the ICMP errors the data plane answers with. It
// does no I/O and allocates only when asked to append.
//
// Every part of nemod that reads an IP header reads it here: a hand parse
// elsewhere is a bug waiting (one such, a payload length compared with the
// wrong operator precedence, let truncated packets through).
package header

// IP protocol numbers, the values of IPv4's Protocol and IPv6's Next
// Header fields: the one set nemod uses.
const (
	ProtoHopByHop = 0   // IPv6 hop-by-hop options
	ProtoICMP     = 1   // ICMP for IPv4
	ProtoIPv4     = 4   // IPv4 encapsulated (IPv4-in-IPv6, RFC 5555)
	ProtoTCP      = 6   // TCP
	ProtoUDP      = 17  // UDP
	ProtoDCCP     = 33  // DCCP
	ProtoIPv6     = 41  // IPv6 encapsulated (IPv6-in-IPv6, RFC 2473)
	ProtoRouting  = 43  // IPv6 routing header
	ProtoFragment = 44  // IPv6 fragment header
	ProtoESP      = 50  // ESP
	ProtoAH       = 51  // authentication header
	ProtoICMPv6   = 58  // ICMPv6
	ProtoNone     = 59  // IPv6 no next header
	ProtoDstOpts  = 60  // IPv6 destination options
	ProtoSCTP     = 132 // SCTP
	ProtoMH       = 135 // Mobility Header (RFC 6275)
	ProtoUDPLite  = 136 // UDP-Lite
)

// hasPorts reports whether an upper-layer protocol begins with a 16-bit
// source and destination port, the fields flow rules match.
func hasPorts(proto uint8) bool {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoDCCP:
		return true
	}
	return false
}

// Version returns the IP version of a packet: the high nibble of its first
// octet, 0 for an empty buffer. It tells which gate to use.
func Version(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0] >> 4)
}
