package header

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var (
	src6 = netip.MustParseAddr("2001:db8:100::10")
	dst6 = netip.MustParseAddr("2001:db8:c::1")
	src4 = netip.MustParseAddr("10.201.5.10")
	dst4 = netip.MustParseAddr("198.51.100.7")
)

// udp6 builds an IPv6 packet carrying UDP from port 1000 to 2000 behind
// the given extension headers (each a full header whose first octet the
// function sets to the next one).
func udp6(ext [][]byte, protos []uint8, payload int) []byte {
	var body []byte
	next := uint8(ProtoUDP)
	for i := len(ext) - 1; i >= 0; i-- {
		h := append([]byte(nil), ext[i]...)
		h[0] = next
		body = append(h, body...)
		next = protos[i]
	}
	u := make([]byte, UDPSize+payload)
	binary.BigEndian.PutUint16(u, 1000)
	binary.BigEndian.PutUint16(u[2:], 2000)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	body = append(body, u...)
	p := AppendIPv6(nil, src6, dst6, next, 64, len(body))
	p[1] = 0xb4 // traffic class 0xab, flow label 0x4cdef
	p[0] = 0x6a
	p[2], p[3] = 0xcd, 0xef
	return append(p, body...)
}

func TestParseIPv6(t *testing.T) {
	p := udp6(nil, nil, 4)
	v, err := ParseIPv6(append(p, 0, 0, 0)) // link-layer padding
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != len(p) || v.Src() != src6 || v.Dst() != dst6 || v.NextHeader() != ProtoUDP ||
		v.HopLimit() != 64 || v.PayloadLength() != 12 || v.TrafficClass() != 0xab || v.FlowLabel() != 0x4cdef {
		t.Fatalf("accessors: len %d src %s dst %s next %d hl %d plen %d tc %#x fl %#x", len(v), v.Src(), v.Dst(),
			v.NextHeader(), v.HopLimit(), v.PayloadLength(), v.TrafficClass(), v.FlowLabel())
	}
	v.SetHopLimit(7)
	if p[7] != 7 {
		t.Fatal("SetHopLimit did not write through the view")
	}
}

// TestParseIPv6RefusesTruncation: a payload length that runs past what was
// received is refused, including the lengths that `40+int(p[4])<<8|int(p[5])`
// (Go's precedence: (40 + p[4]<<8) | p[5]) let through.
func TestParseIPv6RefusesTruncation(t *testing.T) {
	p := udp6(nil, nil, 0)[:44] // claims 8 octets of payload, has 4
	if old := 40 + int(p[4])<<8 | int(p[5]); old > len(p) {
		t.Fatalf("the case no longer shows the old check's flaw (%d > %d)", old, len(p))
	}
	var e *Error
	if _, err := ParseIPv6(p); !errors.As(err, &e) || e.Field != "payload length" || e.Off != 4 {
		t.Fatalf("truncated packet: %v", err)
	}
	for _, b := range [][]byte{nil, p[:39], append([]byte{0x40}, p[1:]...)} {
		if _, err := ParseIPv6(b); err == nil {
			t.Errorf("% x accepted", b)
		}
	}
}

func TestWalkAndFlow(t *testing.T) {
	hbh := make([]byte, 8)
	dopt := make([]byte, 16)
	dopt[1] = 1
	frag := make([]byte, 8)
	ah := make([]byte, 12)
	ah[1] = 1 // (1+2)*4 = 12
	for _, tc := range []struct {
		name   string
		ext    [][]byte
		protos []uint8
		proto  uint8
		ports  bool
		later  bool
	}{
		{"plain", nil, nil, ProtoUDP, true, false},
		{"hbh+dstopts+frag+ah", [][]byte{hbh, dopt, frag, ah}, []uint8{ProtoHopByHop, ProtoDstOpts, ProtoFragment, ProtoAH}, ProtoUDP, true, false},
		{"later fragment", [][]byte{{0, 0, 0, 8, 0, 0, 0, 1}}, []uint8{ProtoFragment}, ProtoUDP, false, true},
	} {
		p := udp6(tc.ext, tc.protos, 4)
		v, err := ParseIPv6(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var seen []uint8
		u, err := Walk(v, func(proto uint8, h []byte, off int) error {
			seen = append(seen, proto)
			if !bytes.Equal(h, p[off:off+len(h)]) {
				t.Errorf("%s: header at %d is not the packet's", tc.name, off)
			}
			return nil
		})
		if err != nil || u.Proto != tc.proto || u.LaterFragment != tc.later || len(seen) != len(tc.ext) {
			t.Fatalf("%s: walk %+v %v, saw %v", tc.name, u, err, seen)
		}
		f, err := ParseFlow(p)
		if err != nil || f.Proto != tc.proto || f.Src != src6 || f.Dst != dst6 || f.TC != 0xab || f.FlowLabel != 0x4cdef {
			t.Fatalf("%s: flow %+v %v", tc.name, f, err)
		}
		if tc.ports != (f.SrcPort == 1000 && f.DstPort == 2000) {
			t.Errorf("%s: ports %d %d", tc.name, f.SrcPort, f.DstPort)
		}
	}
}

func TestWalkRefuses(t *testing.T) {
	hbh := make([]byte, 8)
	long := make([]byte, 8)
	long[1] = 200
	many := make([][]byte, maxExtHeaders+1)
	protos := make([]uint8, len(many))
	for i := range many {
		many[i], protos[i] = make([]byte, 8), ProtoDstOpts
	}
	for name, p := range map[string][]byte{
		"hop-by-hop not first": udp6([][]byte{hbh, hbh}, []uint8{ProtoDstOpts, ProtoHopByHop}, 0),
		"header past the end":  udp6([][]byte{long}, []uint8{ProtoRouting}, 0),
		"too many headers":     udp6(many, protos, 0),
		"no room for ports":    udp6(nil, nil, 0)[:42],
	} {
		if name == "no room for ports" {
			binary.BigEndian.PutUint16(p[4:], 2)
		}
		if _, err := ParseFlow(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	stop := errors.New("stop")
	if _, err := Walk(IPv6(udp6([][]byte{hbh}, []uint8{ProtoHopByHop}, 0)), func(uint8, []byte, int) error { return stop }); err != stop {
		t.Errorf("visit's error not returned: %v", err)
	}
}

func ipv4UDP(payload int) []byte {
	u := make([]byte, UDPSize+payload)
	binary.BigEndian.PutUint16(u, 1000)
	binary.BigEndian.PutUint16(u[2:], 2000)
	p := AppendIPv4(nil, src4, dst4, ProtoUDP, 64, len(u))
	p[1] = 0xb8
	IPv4(p).SetChecksum()
	return append(p, u...)
}

func TestIPv4(t *testing.T) {
	p := ipv4UDP(4)
	v, err := ParseIPv4(append(p, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != len(p) || v.Src() != src4 || v.Dst() != dst4 || v.Protocol() != ProtoUDP || v.TTL() != 64 ||
		v.TOS() != 0xb8 || v.HeaderLength() != 20 || v.TotalLength() != len(p) || len(v.Payload()) != 12 {
		t.Fatalf("accessors: %+v", v)
	}
	f, err := ParseFlow(p)
	if err != nil || f.Src != src4 || f.Dst != dst4 || f.Proto != ProtoUDP || f.SrcPort != 1000 || f.DstPort != 2000 || f.TC != 0xb8 {
		t.Fatalf("flow %+v %v", f, err)
	}
	for ttl := 64; ttl > 1; ttl-- {
		if !v.DecrementTTL() {
			t.Fatalf("TTL %d not decremented", ttl)
		}
		if _, err := ParseIPv4(v); err != nil {
			t.Fatalf("after decrement to %d: %v", v.TTL(), err)
		}
	}
	if v.DecrementTTL() || v.TTL() != 1 {
		t.Fatal("TTL 1 decremented")
	}
	bad := append([]byte(nil), p...)
	bad[12]++
	short := append([]byte(nil), p...)
	binary.BigEndian.PutUint16(short[2:], uint16(len(p)+1))
	IPv4(short).SetChecksum()
	tiny := append([]byte(nil), p...)
	tiny[0] = 0x44
	for name, b := range map[string][]byte{"checksum": bad, "total length": short, "header length": tiny, "short": p[:19], "version": udp6(nil, nil, 0)} {
		if _, err := ParseIPv4(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestChecksumAgreesWithReference(t *testing.T) {
	// A UDP/IPv6 checksum computed by hand, word by word.
	p := udp6(nil, nil, 5)
	v, _ := ParseIPv6(p)
	u := UDP(v.Payload())
	u.SetChecksum(0)
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	a, b := src6.As16(), dst6.As16()
	add(a[:])
	add(b[:])
	s += uint32(len(u)) + ProtoUDP
	add(u)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if got, want := TransportChecksum(src6, dst6, ProtoUDP, u), ^uint16(s); got != want {
		t.Fatalf("checksum %#04x, want %#04x", got, want)
	}
	u.SetChecksum(TransportChecksum(src6, dst6, ProtoUDP, u))
	if Checksum(u, PseudoHeaderSum(src6, dst6, ProtoUDP, len(u))) != 0 {
		t.Fatal("a datagram with its checksum does not sum to zero")
	}
}

func TestPacketTooBig(t *testing.T) {
	orig := udp6(nil, nil, 1400)
	router := netip.MustParseAddr("2001:db8:ffff:1::100")
	ptb, err := ParseIPv6(AppendPacketTooBig(nil, router, IPv6(orig), 1400))
	if err != nil {
		t.Fatal(err)
	}
	icmp := ptb.Payload()
	if len(ptb) != ICMPv6MinMTU || ptb.Src() != router || ptb.Dst() != src6 || ptb.NextHeader() != ProtoICMPv6 ||
		icmp[0] != ICMPv6PacketTooBig || binary.BigEndian.Uint32(icmp[4:]) != 1400 || !bytes.Equal(icmp[8:], orig[:len(icmp)-8]) {
		t.Fatalf("PTB: len %d src %s dst %s type %d", len(ptb), ptb.Src(), ptb.Dst(), icmp[0])
	}
	if Checksum(icmp, PseudoHeaderSum(router, src6, ProtoICMPv6, len(icmp))) != 0 {
		t.Fatal("PTB checksum wrong")
	}
	small := udp6(nil, nil, 10)
	if p := AppendPacketTooBig(nil, router, IPv6(small), 1280); len(p) != 48+len(small) {
		t.Fatalf("short original quoted as %d octets", len(p)-48)
	}
}

func TestFragmentationNeeded(t *testing.T) {
	orig := ipv4UDP(1400)
	gw := netip.MustParseAddr("10.201.5.1")
	p, err := ParseIPv4(AppendFragmentationNeeded(nil, gw, IPv4(orig), 1472))
	if err != nil {
		t.Fatal(err)
	}
	icmp := p.Payload()
	if p.Src() != gw || p.Dst() != src4 || p.Protocol() != ProtoICMP || icmp[0] != ICMPv4DestUnreach || icmp[1] != ICMPv4FragNeeded ||
		binary.BigEndian.Uint16(icmp[6:]) != 1472 || len(icmp) != 8+28 || Checksum(icmp, 0) != 0 {
		t.Fatalf("frag needed: % x", p)
	}
}

func TestFixZeroUDPChecksum(t *testing.T) {
	p := udp6(nil, nil, 4)
	UDP(IPv6(p).Payload()).SetChecksum(0)
	FixZeroUDPChecksum(p)
	if UDP(IPv6(p).Payload()).Checksum() != 0xffff {
		t.Fatal("zero checksum not mended")
	}
	q := ipv4UDP(4)
	before := append([]byte(nil), q...)
	FixZeroUDPChecksum(q)
	if !bytes.Equal(q, before) {
		t.Fatal("an IPv4 packet was changed")
	}
}

// FuzzParse: no input makes a gate, the walker or the flow parser panic,
// and what a gate accepts is consistent with its own accessors.
func FuzzParse(f *testing.F) {
	f.Add(udp6(nil, nil, 4))
	f.Add(udp6([][]byte{make([]byte, 8), make([]byte, 8)}, []uint8{ProtoHopByHop, ProtoFragment}, 4))
	f.Add(ipv4UDP(4))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseIPv6(b); err == nil {
			if len(p) != IPv6MinSize+p.PayloadLength() {
				t.Fatalf("IPv6 cut to %d, payload length %d", len(p), p.PayloadLength())
			}
			if u, err := Walk(p, nil); err == nil && (u.Off > len(p) || u.Off < IPv6MinSize) {
				t.Fatalf("walk ended at %d of %d", u.Off, len(p))
			}
		}
		if p, err := ParseIPv4(b); err == nil {
			if len(p) != p.TotalLength() || p.HeaderLength() > len(p) || Checksum(p[:p.HeaderLength()], 0) != 0 {
				t.Fatalf("IPv4 view inconsistent: %d %d", len(p), p.TotalLength())
			}
		}
		if fl, err := ParseFlow(b); err == nil && !fl.Src.IsValid() {
			t.Fatal("a parsed flow has no source")
		}
		FixZeroUDPChecksum(append([]byte(nil), b...))
	})
}

// Fragmentation: the pieces fit the MTU, carry 8-octet multiples at the
// right offsets with MF on all but the last, valid headers, the copied
// options only after the first, and put back together the payload.
func TestAppendFragmentsIPv4(t *testing.T) {
	orig := ipv4UDP(3000)
	// A record route option (not copied) and a security-like option with
	// the copied flag, then a NOP.
	opts := []byte{7, 7, 4, 0, 0, 0, 0, 0x82, 4, 0xaa, 0xbb, 1}
	withOpts := append(append(append([]byte(nil), orig[:20]...), opts...), orig[20:]...)
	withOpts[0] = 0x45 + byte(len(opts)/4)
	binary.BigEndian.PutUint16(withOpts[2:], uint16(len(withOpts)))
	IPv4(withOpts).SetChecksum()
	for name, p := range map[string][]byte{"plain": orig, "options": withOpts} {
		v, err := ParseIPv4(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		n, off := 0, 0
		ok := AppendFragmentsIPv4(make([]byte, 0, 1500), v, 1400, func(f []byte) {
			fv, err := ParseIPv4(f)
			if err != nil || len(f) > 1400 || fv.Src() != src4 || fv.Protocol() != ProtoUDP {
				t.Fatalf("%s: fragment %d: %v, %d octets", name, n, err, len(f))
			}
			flags := binary.BigEndian.Uint16(f[6:])
			if fv.FragmentOffset() != off {
				t.Fatalf("%s: fragment %d at %d, want %d", name, n, fv.FragmentOffset(), off)
			}
			last := off+len(fv.Payload()) == len(v.Payload())
			if (flags&0x2000 != 0) == last || (!last && len(fv.Payload())%8 != 0) {
				t.Fatalf("%s: fragment %d: flags %#x, %d octets", name, n, flags, len(fv.Payload()))
			}
			if name == "options" {
				wantHL := 20 + 4 // the copied option and padding
				if n == 0 {
					wantHL = 32
				}
				if fv.HeaderLength() != wantHL {
					t.Fatalf("fragment %d header %d octets, want %d", n, fv.HeaderLength(), wantHL)
				}
				if n > 0 && !bytes.Equal(f[20:24], []byte{0x82, 4, 0xaa, 0xbb}) {
					t.Fatalf("fragment %d options % x", n, f[20:24])
				}
			}
			got = append(got, fv.Payload()...)
			off += len(fv.Payload())
			n++
		})
		if !ok || n != 3 || !bytes.Equal(got, v.Payload()) {
			t.Fatalf("%s: %v, %d fragments, payload equal %v", name, ok, n, bytes.Equal(got, v.Payload()))
		}
	}
	if AppendFragmentsIPv4(nil, IPv4(orig), 27, func([]byte) { t.Fatal("emitted") }) {
		t.Fatal("an MTU with no room for 8 octets")
	}
}

// FuzzFragmentIPv4: any packet the gate accepts fragments into valid
// packets within the MTU whose payloads add up.
func FuzzFragmentIPv4(f *testing.F) {
	f.Add(ipv4UDP(100), uint16(68))
	f.Add(ipv4UDP(2000), uint16(1280))
	f.Fuzz(func(t *testing.T, b []byte, mtu uint16) {
		p, err := ParseIPv4(b)
		if err != nil {
			return
		}
		total := 0
		AppendFragmentsIPv4(nil, p, int(mtu), func(frag []byte) {
			fv, err := ParseIPv4(frag)
			if err != nil || len(frag) > int(mtu) {
				t.Fatalf("bad fragment: %v, %d > %d", err, len(frag), mtu)
			}
			total += len(fv.Payload())
		})
		if total != 0 && total != len(p.Payload()) {
			t.Fatalf("fragments carry %d of %d octets", total, len(p.Payload()))
		}
	})
}
