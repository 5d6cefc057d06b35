package header

import (
	"encoding/binary"
	"net/netip"
)

// Checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial (a pseudo-header's, or 0): the one's complement of
// the one's complement sum of b's 16-bit words. Over a header that carries
// its own correct checksum it is 0.
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(sum(b, uint64(initial)))
}

// PartialSum adds b's 16-bit words to the partial sum initial, folded: the
// way to checksum a buffer in pieces (each piece but the last of even
// length) or around a field that must count as zero.
func PartialSum(b []byte, initial uint32) uint32 {
	return uint32(fold(sum(b, uint64(initial))))
}

// PseudoHeaderSum is the partial sum of the pseudo-header an upper-layer
// checksum covers: the addresses, the upper-layer length and the protocol
// (RFC 8200 §8.1 for IPv6, RFC 768 for IPv4).
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint64
	if src.Is4() && dst.Is4() {
		a, b := src.As4(), dst.As4()
		s = sum(a[:], 0)
		s = sum(b[:], s)
	} else {
		a, b := src.As16(), dst.As16()
		s = sum(a[:], 0)
		s = sum(b[:], s)
	}
	s += uint64(length) + uint64(proto)
	return uint32(fold(s))
}

// TransportChecksum is the checksum of an upper-layer payload (ICMPv6,
// UDP, TCP, Mobility Header) whose checksum field the caller has zeroed.
func TransportChecksum(src, dst netip.Addr, proto uint8, payload []byte) uint16 {
	return Checksum(payload, PseudoHeaderSum(src, dst, proto, len(payload)))
}

// sum adds b as big-endian 16-bit words (an odd length padded with zero).
func sum(b []byte, s uint64) uint64 {
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint16(b)) + uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) + uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// fold folds a sum into 16 bits with end-around carries.
func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
