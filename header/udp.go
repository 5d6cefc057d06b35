package header

import "encoding/binary"

// UDPSize is the size of a UDP header.
const UDPSize = 8

// UDP is a view of a UDP header and what follows it, at least UDPSize
// octets.
type UDP []byte

// SrcPort is the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b) }

// DstPort is the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Checksum is the checksum field.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// SetChecksum writes the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[6:], v) }

// FixZeroUDPChecksum mends an IPv6 packet's UDP checksum field that holds
// 0x0000: over IPv6 a zero checksum means "none", which is not allowed and
// receivers drop the datagram (RFC 8200 §8.1); the same sum is sent as
// 0xffff (a checksum offload that computed a sum of zero writes 0x0000).
// Packets that are not IPv6 carrying UDP first are left alone.
func FixZeroUDPChecksum(b []byte) {
	p, err := ParseIPv6(b)
	if err != nil || p.NextHeader() != ProtoUDP || len(p) < IPv6MinSize+UDPSize {
		return
	}
	if u := UDP(p.Payload()); u.Checksum() == 0 {
		u.SetChecksum(0xffff)
	}
}
