package policy

import (
	"slices"
	"testing"

	"nemod/header"
)

func TestParsePacket(t *testing.T) {
	sip := udp(lanHost, remote, 40000, 5060)
	sipWant := Packet{Src: lanHost, Dst: remote, Proto: header.ProtoUDP, SrcPort: 40000, DstPort: 5060}
	with := func(p Packet, f func(*Packet)) Packet { f(&p); return p }
	eight := make([]ext, 8) // the most a walk goes through
	for i := range eight {
		eight[i] = dstOpts()
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want Packet
		ok   bool
	}{
		{"udp", sip.build(), sipWant, true},
		{"traffic class and flow label", withFlow(withTC(sip, 0xb9), 0xabcde).build(),
			with(sipWant, func(p *Packet) { p.TC, p.FlowLabel = 0xb9, 0xabcde }), true},
		{"link-layer padding", append(sip.build(), 0, 0, 0, 0, 0, 0), sipWant, true},
		{"tcp", tcp(remote, lanHost, 443, 1).build(), Packet{Src: remote, Dst: lanHost, Proto: header.ProtoTCP, SrcPort: 443, DstPort: 1}, true},
		{"sctp", pkt{src: lanHost, dst: remote, proto: header.ProtoSCTP, sport: 7, dport: 8}.build(),
			Packet{Src: lanHost, Dst: remote, Proto: header.ProtoSCTP, SrcPort: 7, DstPort: 8}, true},
		{"udp-lite", pkt{src: lanHost, dst: remote, proto: header.ProtoUDPLite, sport: 7, dport: 8}.build(),
			Packet{Src: lanHost, Dst: remote, Proto: header.ProtoUDPLite, SrcPort: 7, DstPort: 8}, true},
		{"icmpv6", pkt{src: lanHost, dst: remote, proto: header.ProtoICMPv6, payload: []byte{128, 0, 0x12, 0x34}}.build(),
			Packet{Src: lanHost, Dst: remote, Proto: header.ProtoICMPv6}, true},
		{"no next header", pkt{src: lanHost, dst: remote, proto: 59}.build(), Packet{Src: lanHost, Dst: remote, Proto: 59}, true},
		{"esp", pkt{src: lanHost, dst: remote, proto: header.ProtoESP, payload: make([]byte, 16)}.build(), Packet{Src: lanHost, Dst: remote, Proto: header.ProtoESP}, true},
		{"every extension header", withExts(sip, hopByHop(), dstOpts(), routing(), fragment(0, true), ah(), dstOpts()).build(), sipWant, true},
		{"later fragment", withExts(sip, dstOpts(), fragment(1, true)).build(), with(sipWant, func(p *Packet) { p.SrcPort, p.DstPort = 0, 0 }), true},
		{"last fragment", withExts(sip, fragment(8191, false)).build(), with(sipWant, func(p *Packet) { p.SrcPort, p.DstPort = 0, 0 }), true},
		{"as many extension headers as allowed", withExts(sip, eight...).build(), sipWant, true},

		{"empty", nil, Packet{}, false},
		{"39 octets", sip.build()[:39], Packet{}, false},
		{"IPv4", func() []byte { b := sip.build(); b[0] = 0x45; return b }(), Packet{}, false},
		{"payload length past the end", sip.build()[:len(sip.build())-1], Packet{}, false},
		{"ports cut off", func() []byte { b := sip.build()[:43]; b[5] = 3; return b }(), Packet{}, false},
		{"hop-by-hop second", withExts(sip, dstOpts(), hopByHop()).build(), Packet{}, false},
		{"too many extension headers", withExts(sip, append(slices.Clone(eight), dstOpts())...).build(), Packet{}, false},
		{"first fragment without ports", func() []byte {
			b := withExts(sip, fragment(0, true)).build()[:48]
			b[4], b[5] = 0, 8
			return b
		}(), Packet{}, false},
		{"extension header past the end", func() []byte {
			b := withExts(sip, dstOpts()).build()
			b[41] = 9
			return b
		}(), Packet{}, false},
		{"AH past the end", func() []byte {
			b := withExts(sip, ah()).build()
			b[41] = 200
			return b
		}(), Packet{}, false},
	} {
		got, ok := ParsePacket(tc.b)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
