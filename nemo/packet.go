package nemo

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"nemod/header"
)

// Option type of the Home Address destination option (RFC 6275 §6.3).
const optHomeAddress = 0xc9

// Packet is an IPv6 packet carrying a Mobility Header, as ParsePacket found
// it. MH aliases the parsed buffer.
type Packet struct {
	Src, Dst    netip.Addr
	HopLimit    uint8
	HomeAddress netip.Addr // from the Home Address option; invalid if none
	RH2Address  netip.Addr // from a type 2 routing header; invalid if none
	MH          []byte
}

// PseudoSrc is the source address of the checksum pseudo-header and of
// authentication: the home address when a Home Address option is present.
func (p *Packet) PseudoSrc() netip.Addr {
	if p.HomeAddress.IsValid() {
		return p.HomeAddress
	}
	return p.Src
}

// PseudoDst is the final destination: the type 2 routing header's address
// when present.
func (p *Packet) PseudoDst() netip.Addr {
	if p.RH2Address.IsValid() {
		return p.RH2Address
	}
	return p.Dst
}

// ParsePacket parses an IPv6 packet whose upper layer is a Mobility Header,
// through hop-by-hop options, a type 2 routing header and destination
// options (with at most one Home Address option). It returns ErrNotMH for
// packets carrying anything else, and an *Error for malformed ones. Octets
// after the IPv6 payload length (link-layer padding) are ignored.
func ParsePacket(b []byte) (Packet, error) {
	var p Packet
	const msg = "IPv6 packet"
	ip, err := header.ParseIPv6(b)
	if err != nil {
		return p, fromHeader(msg, err)
	}
	p.HopLimit, p.Src, p.Dst = ip.HopLimit(), ip.Src(), ip.Dst()
	u, err := header.Walk(ip, func(proto uint8, h []byte, off int) error {
		switch proto {
		case header.ProtoDstOpts:
			return parseDstOpts(h, off, &p)
		case header.ProtoRouting:
			return parseRouting(h, off, &p)
		case header.ProtoHopByHop:
			return nil
		}
		return ErrNotMH // a fragment or AH: not signalling nemod reads
	})
	if err != nil {
		return p, fromHeader(msg, err)
	}
	if u.Proto != header.ProtoMH {
		return p, ErrNotMH
	}
	p.MH = ip[u.Off:]
	return p, nil
}

// fromHeader turns a header validity error into the package's own.
func fromHeader(msg string, err error) error {
	var he *header.Error
	if errors.As(err, &he) {
		return errAt(msg, he.Field, he.Off, he.Reason)
	}
	return err
}

func parseDstOpts(h []byte, base int, p *Packet) error {
	const msg = "destination options"
	for o := 2; o < len(h); {
		t := h[o]
		if t == 0 { // Pad1
			o++
			continue
		}
		if o+2 > len(h) {
			return errAt(msg, "option length", base+o, "runs past the header")
		}
		l := int(h[o+1])
		if o+2+l > len(h) {
			return errAt(msg, "option length", base+o+1, itoa(l)+" runs past the header")
		}
		switch {
		case t == 1: // PadN
		case t == optHomeAddress:
			if p.HomeAddress.IsValid() {
				return errAt(msg, "Home Address option", base+o, "appears twice")
			}
			if l != 16 {
				return errAt(msg, "Home Address option length", base+o+1, "is "+itoa(l)+", want 16")
			}
			p.HomeAddress = addr16(h[o+2:])
		case t>>6 != 0:
			// The option's action bits ask a node that does not know it to
			// discard the packet (RFC 8200 §4.2).
			return errAt(msg, "option type", base+o, "unknown option "+itoa(int(t))+" requires discarding the packet")
		}
		o += 2 + l
	}
	return nil
}

func parseRouting(h []byte, base int, p *Packet) error {
	const msg = "routing header"
	typ, segLeft := h[2], h[3]
	if typ != 2 {
		if segLeft == 0 {
			return nil // an exhausted routing header of any type is ignored
		}
		return errAt(msg, "routing type", base+2, "type "+itoa(int(typ))+" with segments left is not supported")
	}
	if p.RH2Address.IsValid() {
		return errAt(msg, "type 2 routing header", base, "appears twice")
	}
	if h[1] != 2 || segLeft != 1 {
		// RFC 6275 §6.4: exactly one segment, the home address.
		return errAt(msg, "type 2 routing header", base+1, "needs Hdr Ext Len 2 and 1 segment left")
	}
	p.RH2Address = addr16(h[8:])
	return nil
}

// DefaultHopLimit is the hop limit of the signalling packets we send.
const DefaultHopLimit = 64

// AppendPacket appends an IPv6 packet carrying mh: the IPv6 header, a type 2
// routing header when rh2 is valid (a Binding Acknowledgement to a care-of
// address), a destination options header with the Home Address option when
// hao is valid (a Binding Update from a care-of address), then mh, whose
// checksum it sets.
func AppendPacket(b []byte, src, dst, hao, rh2 netip.Addr, hopLimit uint8, mh []byte) ([]byte, error) {
	for _, a := range []netip.Addr{src, dst} {
		if !a.Is6() {
			return b, errAt("IPv6 packet", "address", -1, a.String()+" is not an IPv6 address")
		}
	}
	if (hao.IsValid() && !hao.Is6()) || (rh2.IsValid() && !rh2.Is6()) {
		return b, errAt("IPv6 packet", "home address", -1, "is not an IPv6 address")
	}
	plen := len(mh)
	if hao.IsValid() {
		plen += 24
	}
	if rh2.IsValid() {
		plen += 24
	}
	if plen > 0xffff {
		return b, errAt("IPv6 packet", "payload length", -1, "too long")
	}
	first := uint8(header.ProtoMH)
	if hao.IsValid() {
		first = header.ProtoDstOpts
	}
	if rh2.IsValid() {
		first = header.ProtoRouting
	}
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, first, hopLimit)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	if rh2.IsValid() {
		next := uint8(header.ProtoMH)
		if hao.IsValid() {
			next = header.ProtoDstOpts
		}
		a := rh2.As16()
		b = append(b, next, 2, 2, 1, 0, 0, 0, 0)
		b = append(b, a[:]...)
	}
	if hao.IsValid() {
		// PadN(4) puts the option at 8n+6 as RFC 6275 §6.3 requires.
		a := hao.As16()
		b = append(b, header.ProtoMH, 2, 1, 2, 0, 0, optHomeAddress, 16)
		b = append(b, a[:]...)
	}
	mhStart := len(b)
	b = append(b, mh...)
	ps, pd := src, dst
	if hao.IsValid() {
		ps = hao
	}
	if rh2.IsValid() {
		pd = rh2
	}
	SetChecksum(b[mhStart:], ps, pd)
	return b, nil
}

// Checksum computes the Mobility Header checksum (RFC 6275 §6.1.1) of mh
// for the pseudo-header addresses src and dst, treating the checksum field
// as zero.
func Checksum(src, dst netip.Addr, mh []byte) uint16 {
	ph := header.PseudoHeaderSum(src, dst, header.ProtoMH, len(mh))
	if len(mh) < 6 {
		return header.Checksum(mh, ph)
	}
	// The field itself counts as zero: sum the octets around it.
	return header.Checksum(mh[6:], header.PartialSum(mh[:4], ph))
}

// SetChecksum writes the checksum of mh into its Checksum field.
func SetChecksum(mh []byte, src, dst netip.Addr) {
	if len(mh) >= 6 {
		binary.BigEndian.PutUint16(mh[4:], Checksum(src, dst, mh))
	}
}

// VerifyChecksum reports whether the checksum of mh is right.
func VerifyChecksum(mh []byte, src, dst netip.Addr) bool {
	return len(mh) >= 6 && binary.BigEndian.Uint16(mh[4:]) == Checksum(src, dst, mh)
}
