package ra

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The two ICMPv6 messages the router needs (RFC 4861 §4.1, §4.2), encoded
// and checked here rather than through a general NDP library, whose
// dependencies (domain name handling for options the router never sends)
// would cost a router's flash more than these two messages. The tests
// decode every RA with such a library, as an independent checker.

// RA is a Router Advertisement as the router sends it: no M or O flag
// (SLAAC only), no reachable time or retransmission timer of its own.
type RA struct {
	CurrentHopLimit uint8
	RouterLifetime  time.Duration
	Prefixes        []PrefixInformation
	MTU             uint32       // 0: no MTU option
	DNS             []netip.Addr // RDNSS option (RFC 8106); none if empty
	DNSLifetime     time.Duration
}

// PrefixInformation is a Prefix Information option (RFC 4861 §4.6.2).
type PrefixInformation struct {
	Prefix                                 netip.Prefix
	OnLink, AutonomousAddressConfiguration bool
	ValidLifetime, PreferredLifetime       time.Duration
}

// ICMPv6 types and option types of RFC 4861 and RFC 8106.
const (
	typeRS       = 133
	typeRA       = 134
	optSourceLLA = 1
	optPrefix    = 3
	optMTU       = 5
	optRDNSS     = 25
)

func seconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(d/time.Second, 0xffffffff))
}

// Marshal encodes the RA as the ICMPv6 message to send; the checksum is
// left 0 for the kernel, which computes it on ICMPv6 raw sockets.
func (r *RA) Marshal() []byte {
	b := make([]byte, 16, 16+32*len(r.Prefixes)+8+8+16*len(r.DNS))
	b[0] = typeRA
	b[4] = r.CurrentHopLimit
	binary.BigEndian.PutUint16(b[6:], uint16(min(seconds(r.RouterLifetime), 0xffff)))
	for _, p := range r.Prefixes {
		o := make([]byte, 32)
		o[0], o[1], o[2] = optPrefix, 4, uint8(p.Prefix.Bits())
		if p.OnLink {
			o[3] |= 0x80
		}
		if p.AutonomousAddressConfiguration {
			o[3] |= 0x40
		}
		binary.BigEndian.PutUint32(o[4:], seconds(p.ValidLifetime))
		binary.BigEndian.PutUint32(o[8:], seconds(p.PreferredLifetime))
		a := p.Prefix.Masked().Addr().As16()
		copy(o[16:], a[:])
		b = append(b, o...)
	}
	if r.MTU != 0 {
		o := make([]byte, 8)
		o[0], o[1] = optMTU, 1
		binary.BigEndian.PutUint32(o[4:], r.MTU)
		b = append(b, o...)
	}
	if len(r.DNS) > 0 {
		o := make([]byte, 8, 8+16*len(r.DNS))
		o[0], o[1] = optRDNSS, uint8(1+2*len(r.DNS))
		binary.BigEndian.PutUint32(o[4:], seconds(r.DNSLifetime))
		for _, a := range r.DNS {
			a16 := a.As16()
			o = append(o, a16[:]...)
		}
		b = append(b, o...)
	}
	return b
}

// parseRS checks a Router Solicitation's form (RFC 4861 §6.1.1: at least
// 8 octets, type 133, every option of non-zero length and within the
// message) and reports whether it carries a source link-layer address.
func parseRS(b []byte) (sourceLLA bool, err error) {
	if len(b) < 8 || b[0] != typeRS {
		return false, errors.New("not a Router Solicitation")
	}
	for o := b[8:]; len(o) > 0; {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return false, fmt.Errorf("option at octet %d: bad length", len(b)-len(o))
		}
		if o[0] == optSourceLLA {
			sourceLLA = true
		}
		o = o[int(o[1])*8:]
	}
	return sourceLLA, nil
}
