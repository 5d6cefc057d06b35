package policy

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"nemod/header"
	"nemod/nemo"
)

func seedPackets() [][]byte {
	sip := udp(lanHost, remote, 40000, 5060)
	return [][]byte{
		sip.build(),
		withExts(sip, hopByHop(), dstOpts(), routing(), fragment(0, true), ah(), dstOpts()).build(),
		withExts(sip, fragment(185, false)).build(),
		withTC(tcp(remote, lanHost, 443, 1), 0xb9).build(),
		pkt{src: lanHost, dst: roadCN, proto: header.ProtoICMPv6, payload: []byte{128, 0, 0, 0}}.build(),
		pkt{src: lanHost, dst: roadCN, proto: header.ProtoSCTP, sport: 1, dport: 2}.build(),
		pkt{src: lanHost, dst: roadCN, proto: 59}.build(),
		udp(lanHost, remote, 1, 2).build()[:44],
		ipv4UDP(lan4, cn4, 40000, 5060, 0xb8),
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := ParsePacket(b)
		if !ok {
			return
		}
		if p.Src.Is4() {
			// IPv4, since rules match it too: a header that checks out,
			// the fields where its header has them.
			if _, err := header.ParseIPv4(b); err != nil {
				t.Fatalf("accepted an IPv4 packet its gate refuses: %v", err)
			}
			if p.Src != netip.AddrFrom4([4]byte(b[12:16])) || p.Dst != netip.AddrFrom4([4]byte(b[16:20])) || p.TC != b[1] || p.Proto != b[9] || p.FlowLabel != 0 {
				t.Fatalf("IPv4 packet read as %+v", p)
			}
		} else {
			if len(b) < 40 || b[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(b[4:])) > len(b) {
				t.Fatal("accepted a packet that is neither IPv6 nor IPv4")
			}
			if p.Src != netip.AddrFrom16([16]byte(b[8:24])) || p.Dst != netip.AddrFrom16([16]byte(b[24:40])) {
				t.Fatal("addresses")
			}
			if p.TC != b[0]<<4|b[1]>>4 || p.FlowLabel != binary.BigEndian.Uint32(b)&0xfffff {
				t.Fatal("traffic class or flow label")
			}
		}
		switch p.Proto {
		case header.ProtoTCP, header.ProtoUDP, header.ProtoUDPLite, header.ProtoSCTP, header.ProtoDCCP:
		default:
			if p.SrcPort != 0 || p.DstPort != 0 {
				t.Fatalf("ports for protocol %d", p.Proto)
			}
		}
		if p.Src.Is4() {
			return // the tests' encoder below builds IPv6 only
		}
		// Built again from what was read (by the tests' encoder), the
		// packet reads the same. A Proto that is an extension header's
		// comes from a later fragment, whose Next Header names what
		// follows in the whole packet: it is built behind one too.
		re := pkt{src: p.Src, dst: p.Dst, proto: p.Proto, sport: p.SrcPort, dport: p.DstPort, tc: p.TC, flow: p.FlowLabel}
		switch p.Proto {
		case header.ProtoHopByHop, header.ProtoRouting, header.ProtoDstOpts, header.ProtoFragment, header.ProtoAH:
			re.exts = []ext{fragment(1, false)}
		}
		again, ok := ParsePacket(re.build())
		if !ok || again != p {
			t.Fatalf("rebuilt packet reads %+v (%v), was %+v", again, ok, p)
		}
	})
}

// refMatches is Matches written the slow, obvious way, to check it against:
// the selector turned into the uplink's view when needed, addresses
// compared with netip.
func refMatches(ts *nemo.TrafficSelector, p *Packet, d Direction) bool {
	want4 := ts.Format == nemo.TSFormatIPv4
	if ts.Format != nemo.TSFormatIPv4 && ts.Format != nemo.TSFormatIPv6 ||
		!p.Src.IsValid() || !p.Dst.IsValid() || p.Src.Is4() != want4 || p.Dst.Is4() != want4 {
		return false
	}
	has := func(bit uint32) bool { return ts.Present&bit != 0 }
	num := func(bit uint32, v, lo, hi uint32) bool {
		if !has(bit) {
			return true
		}
		if !has(bit << 1) {
			hi = lo
		}
		return lo <= v && v <= hi
	}
	addr := func(bit uint32, v, lo, hi netip.Addr) bool {
		if !has(bit) {
			return true
		}
		if !has(bit << 1) {
			hi = lo
		}
		return lo.Compare(v) <= 0 && v.Compare(hi) <= 0
	}
	cn, mn, cnPort, mnPort := p.Src, p.Dst, p.SrcPort, p.DstPort
	if d == FromMN {
		cn, mn, cnPort, mnPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
	return !has(nemo.TSSPIStart) &&
		addr(nemo.TSSrcAddrStart, cn, ts.SrcAddrStart, ts.SrcAddrEnd) &&
		addr(nemo.TSDstAddrStart, mn, ts.DstAddrStart, ts.DstAddrEnd) &&
		num(nemo.TSFlowLabelStart, p.FlowLabel, ts.FlowLabelStart&0xfffff, ts.FlowLabelEnd&0xfffff) &&
		num(nemo.TSSrcPortStart, uint32(cnPort), uint32(ts.SrcPortStart), uint32(ts.SrcPortEnd)) &&
		num(nemo.TSDstPortStart, uint32(mnPort), uint32(ts.DstPortStart), uint32(ts.DstPortEnd)) &&
		num(nemo.TSTCStart, uint32(p.TC)>>2, uint32(ts.TCStart)>>2, uint32(ts.TCEnd)>>2) &&
		num(nemo.TSProtoStart, uint32(p.Proto), uint32(ts.ProtoStart), uint32(ts.ProtoEnd))
}

// FuzzMatch checks Matches against refMatches, the two directions against
// each other, and that Targets only ever picks usable BIDs, each once.
// The packet is either parsed from pkt or, when that fails, made of its
// octets field by field, so that any value reaches the matcher.
func FuzzMatch(f *testing.F) {
	tab, _ := compileExample(f, "\toption default_policy 'control'\n", "")
	for i, e := range tab.Entries {
		b, err := e.TS.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range seedPackets() {
			f.Add(e.TS.Format, b, p, i%2 == 0, uint8(i))
		}
	}
	all := nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: 0xffff, SrcAddrStart: remote, SrcAddrEnd: remote.Next(),
		DstAddrStart: lanHost, DstAddrEnd: lanOther, FlowLabelEnd: 0xfffff, SrcPortEnd: 1000, DstPortEnd: 1000, TCEnd: 0xff, ProtoEnd: 0xff}
	b, _ := all.MarshalBinary()
	f.Add(all.Format, b, seedPackets()[0], false, uint8(3))
	f.Add(all.Format, b[:len(b)-1], seedPackets()[0], false, uint8(3))

	f.Fuzz(func(t *testing.T, format uint8, tsData, raw []byte, toMN bool, alive uint8) {
		var ts nemo.TrafficSelector
		if err := ts.UnmarshalBinary(format, tsData); err != nil {
			return
		}
		p, ok := ParsePacket(raw)
		if !ok {
			var b [48]byte
			copy(b[:], raw)
			p = Packet{
				Src: netip.AddrFrom16([16]byte(b[0:16])), Dst: netip.AddrFrom16([16]byte(b[16:32])),
				Proto: b[32], SrcPort: binary.BigEndian.Uint16(b[33:]), DstPort: binary.BigEndian.Uint16(b[35:]),
				TC: b[37], FlowLabel: binary.BigEndian.Uint32(b[38:]) & 0xfffff,
			}
			if b[42]&1 != 0 {
				p.Src, p.Dst = netip.AddrFrom4([4]byte(b[0:4])), netip.AddrFrom4([4]byte(b[16:20]))
			}
		}
		d := FromMN
		if toMN {
			d = ToMN
		}
		got := Matches(&ts, &p, d)
		if want := refMatches(&ts, &p, d); got != want {
			t.Fatalf("Matches %v, reference %v: %+v %+v %v", got, want, ts, p, d)
		}
		rev := p
		rev.Src, rev.Dst, rev.SrcPort, rev.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		if back := Matches(&ts, &rev, 1-d); back != got {
			t.Fatalf("the reversed packet the other way: %v, %v", back, got)
		}

		usable := func(b uint16) bool { return b < 8 && alive&(1<<b) != 0 }
		ha, status := FromFlowIDs([]nemo.FlowID{
			{FID: 1, Pri: 1, BIDs: []uint16{1, 2, 3}, TS: ts},
			{FID: 2, Pri: 2, BIDs: []uint16{4}, TS: ts},
			{FID: 3, Pri: 3, BIDs: []uint16{5}, TS: nemo.TrafficSelector{Format: nemo.TSFormatIPv6}},
		})
		targets, e, direct := ha.Targets(&p, d, usable, []uint16{6, 7, 1}, nil)
		if direct {
			t.Fatal("direct at the home agent")
		}
		for i, b := range targets {
			if !usable(b) || slices.Contains(targets[:i], b) {
				t.Fatalf("targets %v with usable %08b", targets, alive)
			}
		}
		if e != nil && status[0] == 0 && e.FID == 1 && !got {
			t.Fatal("matched an entry whose selector does not match")
		}
		if e == nil && len(targets) > 1 {
			t.Fatalf("fallback to %v", targets)
		}
		if rt, re, _ := tab.Targets(&p, d, usable, nil, nil); re != nil && !re.Direct && len(rt) == 0 {
			t.Fatalf("matched %s with no usable BID", re.Rule)
		}
	})
}
