package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4MinSize is the size of an IPv4 header without options.
const IPv4MinSize = 20

// IPv4 is a view of an IPv4 packet. Its accessors trust the lengths: get
// one from ParseIPv4, which checks them.
type IPv4 []byte

// ParseIPv4 is the validity gate of IPv4 packets: version 4, a header
// length of at least 20 octets within the total length, a total length
// that fits in b, and a correct header checksum. It returns the packet cut
// to its total length.
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinSize {
		return nil, errAt("IPv4", "header", 0, "is "+itoa(len(b))+" octets, want at least 20")
	}
	if v := Version(b); v != 4 {
		return nil, errAt("IPv4", "version", 0, "is "+itoa(v)+", want 4")
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4MinSize {
		return nil, errAt("IPv4", "header length", 0, itoa(ihl)+" octets, want at least 20")
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total < ihl {
		return nil, errAt("IPv4", "total length", 2, itoa(total)+" is shorter than the "+itoa(ihl)+"-octet header")
	}
	if total > len(b) {
		return nil, errAt("IPv4", "total length", 2, itoa(total)+" runs past the "+itoa(len(b))+" octets received")
	}
	if Checksum(b[:ihl], 0) != 0 {
		return nil, errAt("IPv4", "header checksum", 10, "is wrong")
	}
	return IPv4(b[:total]), nil
}

// HeaderLength is the header's length in octets, options included.
func (b IPv4) HeaderLength() int { return int(b[0]&0x0f) * 4 }

// TOS is the type of service octet (DSCP and ECN).
func (b IPv4) TOS() uint8 { return b[1] }

// TotalLength is the length of the whole packet.
func (b IPv4) TotalLength() int { return int(binary.BigEndian.Uint16(b[2:])) }

// DontFragment reports the DF flag.
func (b IPv4) DontFragment() bool { return b[6]&0x40 != 0 }

// FragmentOffset is the fragment's offset in octets (0 for a whole packet
// or a first fragment).
func (b IPv4) FragmentOffset() int { return int(binary.BigEndian.Uint16(b[6:])&0x1fff) * 8 }

// TTL is the time to live.
func (b IPv4) TTL() uint8 { return b[8] }

// Protocol is the upper-layer protocol.
func (b IPv4) Protocol() uint8 { return b[9] }

// Src is the source address.
func (b IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(b[12:16])) }

// Dst is the destination address.
func (b IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(b[16:20])) }

// Payload is everything after the header.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():] }

// DecrementTTL lowers the TTL by one hop and mends the header checksum
// incrementally (RFC 1624). It reports false, changing nothing, when the
// TTL is already 1 or 0: the packet must not be forwarded.
func (b IPv4) DecrementTTL() bool {
	if b[8] <= 1 {
		return false
	}
	b[8]--
	// The TTL is the high octet of the 16-bit word at offset 8: it went
	// down by 0x0100, so the one's complement sum goes up by it.
	sum := uint32(binary.BigEndian.Uint16(b[10:])) + 0x0100
	binary.BigEndian.PutUint16(b[10:], uint16(sum+sum>>16))
	return true
}

// SetChecksum computes and writes the header checksum.
func (b IPv4) SetChecksum() {
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:b.HeaderLength()], 0))
}

// AppendIPv4 appends a 20-octet IPv4 header, checksum set, for a payload
// of plen octets.
func AppendIPv4(b []byte, src, dst netip.Addr, proto, ttl uint8, plen int) []byte {
	start := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(IPv4MinSize+plen))
	b = append(b, 0, 0, 0, 0, ttl, proto, 0, 0)
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	IPv4(b[start:]).SetChecksum()
	return b
}

// AppendFragmentsIPv4 splits p, an IPv4 packet longer than mtu whose DF
// flag is clear, into fragments of at most mtu octets (RFC 791 §3.2), as a
// router forwarding it onto a link of that MTU must, and calls emit with
// each (a slice of buf, reused between calls). Options go whole into the
// first fragment and, of the others, only those whose copied flag is set.
// It reports false, emitting nothing, when mtu leaves no room for 8 octets
// of payload after a header.
func AppendFragmentsIPv4(buf []byte, p IPv4, mtu int, emit func(frag []byte)) bool {
	hl := p.HeaderLength()
	payload := p.Payload()
	later := copiedOptions(p[IPv4MinSize:hl])
	laterHL := IPv4MinSize + (len(later)+3)/4*4
	first := (mtu - hl) &^ 7
	rest := (mtu - laterHL) &^ 7
	if first < 8 || rest < 8 {
		return false
	}
	flags := binary.BigEndian.Uint16(p[6:])
	mf := flags & 0x2000
	base := int(flags&0x1fff) * 8 // p may itself be a fragment
	for off := 0; off < len(payload); {
		h, n := p[:hl], first
		if off > 0 {
			n = rest
		}
		n = min(n, len(payload)-off)
		b := append(buf[:0], h...)
		if off > 0 {
			b = append(b[:IPv4MinSize], later...)
			for len(b) < laterHL {
				b = append(b, 0) // end of option list, padding
			}
			b[0] = 0x40 | uint8(laterHL/4)
		}
		b = append(b, payload[off:off+n]...)
		more := mf
		if off+n < len(payload) {
			more = 0x2000
		}
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		binary.BigEndian.PutUint16(b[6:], more|uint16((base+off)/8))
		IPv4(b).SetChecksum()
		emit(b)
		off += n
	}
	return true
}

// copiedOptions returns the options of an IPv4 header whose copied flag is
// set: the ones every fragment carries. A malformed option list ends the
// walk.
func copiedOptions(opts []byte) []byte {
	var out []byte
	for i := 0; i < len(opts); {
		switch t := opts[i]; {
		case t == 0: // end of option list
			return out
		case t == 1: // no operation
			i++
		default:
			if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
				return out
			}
			l := int(opts[i+1])
			if t&0x80 != 0 {
				out = append(out, opts[i:i+l]...)
			}
			i += l
		}
	}
	return out
}
