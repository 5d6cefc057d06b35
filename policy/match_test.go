package policy

import (
	"net/netip"
	"slices"
	"testing"

	"nemod/header"
	"nemod/nemo"
)

type targetCase struct {
	name   string
	p      pkt
	d      Direction
	usable []uint16
	want   []uint16
	rule   string // "" = no entry matched
	fid    uint16
	direct bool
}

func udp(src, dst netip.Addr, sport, dport uint16) pkt {
	return pkt{src: src, dst: dst, proto: header.ProtoUDP, sport: sport, dport: dport, payload: []byte("hello")}
}

func tcp(src, dst netip.Addr, sport, dport uint16) pkt {
	return pkt{src: src, dst: dst, proto: header.ProtoTCP, sport: sport, dport: dport, payload: make([]byte, 16)}
}

func withExts(p pkt, e ...ext) pkt  { p.exts = e; return p }
func withTC(p pkt, tc uint8) pkt    { p.tc = tc; return p }
func withFlow(p pkt, fl uint32) pkt { p.flow = fl; return p }

var both = []uint16{bidWifi, bidCell}

// Classification on the router, both directions, without default_policy:
// unmatched packets go to the first usable binding (wifi, BID-PRI 10).
func TestTargetsNoDefault(t *testing.T) {
	sip := udp(lanHost, remote, 40000, 5060)
	icmp := pkt{src: lanHost, dst: remote, proto: header.ProtoICMPv6, payload: []byte{128, 0, 0, 0, 0, 1, 0, 1}}
	cases := []targetCase{
		{name: "sip: cell first", p: sip, usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "sip: cell down, the chain's wifi entry", p: sip, usable: []uint16{bidWifi}, want: []uint16{bidWifi}, rule: "sip", fid: 2},
		{name: "sip: wifi down", p: sip, usable: []uint16{bidCell}, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "sip: nothing usable", p: sip, usable: nil, want: nil},
		{name: "sip: last port of the range", p: udp(lanHost, remote, 40000, 5061), usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "port below the range", p: udp(lanHost, remote, 40000, 5059), usable: both, want: []uint16{bidWifi}},
		{name: "port above the range: fallback", p: udp(lanHost, remote, 40000, 5062), usable: both, want: []uint16{bidWifi}},
		{name: "fallback with wifi down", p: udp(lanHost, remote, 40000, 5062), usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "sip's port as source port does not match", p: udp(lanHost, remote, 5060, 40000), usable: both, want: []uint16{bidWifi}},
		{name: "sip over TCP does not match", p: tcp(lanHost, remote, 40000, 5060), usable: both, want: []uint16{bidWifi}},
		{name: "sip downlink at the router", p: udp(remote, lanHost, 5060, 40000), d: ToMN, usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "sip downlink, ports the uplink way round", p: udp(remote, lanHost, 40000, 5060), d: ToMN, usable: both, want: []uint16{bidWifi}},

		{name: "video", p: tcp(lanHost, videoCN, 40000, 443), usable: both, want: []uint16{bidWifi}, rule: "video", fid: 3},
		{name: "video: wifi down", p: tcp(lanHost, videoCN, 40000, 443), usable: []uint16{bidCell}, want: []uint16{bidCell}, rule: "video", fid: 4},
		{name: "video's last address", p: tcp(lanHost, netip.MustParseAddr("2001:db8:c:ffff:ffff:ffff:ffff:ffff"), 1, 2), usable: both, want: []uint16{bidWifi}, rule: "video", fid: 3},
		{name: "next to video's prefix", p: tcp(lanHost, netip.MustParseAddr("2001:db8:d::"), 1, 2), usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "video downlink", p: tcp(videoCN, lanHost, 443, 40000), d: ToMN, usable: both, want: []uint16{bidWifi}, rule: "video", fid: 3},
		{name: "video's prefix as the source is not video", p: tcp(videoCN, lanHost, 443, 40000), d: FromMN, usable: []uint16{bidCell}, want: []uint16{bidCell}},

		{name: "roadside", p: tcp(lanHost, roadCN, 40000, 80), usable: both, want: nil, rule: "roadside", direct: true},
		{name: "roadside with nothing usable", p: tcp(lanHost, roadCN, 40000, 80), usable: nil, want: nil, rule: "roadside", direct: true},
		{name: "roadside ICMPv6", p: pkt{src: lanHost, dst: roadCN, proto: header.ProtoICMPv6, payload: icmp.payload}, usable: both, rule: "roadside", direct: true},
		{name: "roadside downlink", p: udp(roadCN, lanOther, 53, 40000), d: ToMN, usable: both, rule: "roadside", direct: true},
		// roadside comes first: the direct rule wins over telemetry.
		{name: "telemetry to roadside", p: withTC(udp(lanHost, roadCN, 1, 2), 46<<2), usable: both, rule: "roadside", direct: true},

		{name: "telemetry: duplicate", p: withTC(udp(lanHost, remote, 1, 2), 46<<2), usable: both, want: []uint16{bidCell, bidWifi}, rule: "telemetry", fid: 5},
		{name: "telemetry: ECN bits ignored", p: withTC(udp(lanHost, remote, 1, 2), 46<<2|3), usable: both, want: []uint16{bidCell, bidWifi}, rule: "telemetry", fid: 5},
		{name: "telemetry: cell down", p: withTC(udp(lanHost, remote, 1, 2), 46<<2), usable: []uint16{bidWifi}, want: []uint16{bidWifi}, rule: "telemetry", fid: 5},
		{name: "telemetry: wifi down", p: withTC(udp(lanHost, remote, 1, 2), 46<<2), usable: []uint16{bidCell}, want: []uint16{bidCell}, rule: "telemetry", fid: 5},
		{name: "telemetry: nothing usable", p: withTC(udp(lanHost, remote, 1, 2), 46<<2), usable: nil, want: nil},
		{name: "DSCP 45 is not telemetry", p: withTC(udp(lanHost, remote, 1, 2), 45<<2), usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "DSCP 47 is not telemetry", p: withTC(udp(lanHost, remote, 1, 2), 47<<2), usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "another LAN host is not telemetry", p: withTC(udp(lanOther, remote, 1, 2), 46<<2), usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "telemetry downlink", p: withTC(tcp(remote, lanHost, 1, 2), 46<<2), d: ToMN, usable: both, want: []uint16{bidCell, bidWifi}, rule: "telemetry", fid: 5},
		{name: "telemetry and sip: sip first", p: withTC(sip, 46<<2), usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},

		{name: "sip behind extension headers", p: withExts(sip, hopByHop(), dstOpts(), routing(), fragment(0, true), ah(), dstOpts()),
			usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "sip, later fragment: no ports", p: withExts(sip, fragment(185, false)), usable: both, want: []uint16{bidWifi}},
		{name: "sip, atomic fragment", p: withExts(sip, fragment(0, false)), usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
		{name: "ICMPv6 has no ports", p: icmp, usable: []uint16{bidCell}, want: []uint16{bidCell}},
		{name: "flow label and hop limit do not matter", p: withFlow(sip, 0xabcde), usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
	}
	tab, r := compileExample(t, "", "")
	runTargets(t, tab, UplinkOrder(r), cases)
}

// With default_policy the catch-alls replace the fallback: wifi_first's
// chain, then BID order only when both are down.
func TestTargetsDefault(t *testing.T) {
	other := udp(lanHost, remote, 40000, 9999)
	cases := []targetCase{
		{name: "default: wifi", p: other, usable: both, want: []uint16{bidWifi}, rule: "default", fid: 6},
		{name: "default: wifi down", p: other, usable: []uint16{bidCell}, want: []uint16{bidCell}, rule: "default", fid: 7},
		{name: "default: nothing usable", p: other, usable: nil, want: nil},
		{name: "default downlink", p: other.reverse(), d: ToMN, usable: both, want: []uint16{bidWifi}, rule: "default", fid: 6},
		{name: "ICMPv6", p: pkt{src: lanHost, dst: remote, proto: header.ProtoICMPv6}, usable: both, want: []uint16{bidWifi}, rule: "default", fid: 6},
		{name: "sip before default", p: udp(lanHost, remote, 1, 5060), usable: both, want: []uint16{bidCell}, rule: "sip", fid: 1},
	}
	tab, _ := compileExample(t, "\toption default_policy 'wifi_first'\n", "")
	// A fallback order that differs from the default policy's, to tell
	// the two apart.
	runTargets(t, tab, []uint16{bidCell, bidWifi}, cases)
}

func runTargets(t *testing.T, tab *Table, order []uint16, cases []targetCase) {
	t.Helper()
	buf := make([]uint16, 0, 4)
	for _, c := range cases {
		p, ok := ParsePacket(c.p.build())
		if !ok {
			t.Errorf("%s: packet does not parse", c.name)
			continue
		}
		got, e, direct := tab.Targets(&p, c.d, usableSet(c.usable...), order, buf[:0])
		rule, fid := "", uint16(0)
		if e != nil {
			rule, fid = e.Rule, e.FID
		}
		if !slices.Equal(got, c.want) || rule != c.rule || fid != c.fid || direct != c.direct {
			t.Errorf("%s: %v, rule %q FID %d direct %v; want %v, rule %q FID %d direct %v",
				c.name, got, rule, fid, direct, c.want, c.rule, c.fid, c.direct)
		}
		me, mok := tab.Match(&p, c.d, usableSet(c.usable...))
		if mok != (e != nil) || me != e {
			t.Errorf("%s: Match gives %v, Targets %v", c.name, me, e)
		}
	}
}

// The home agent, with the table it rebuilt from the Binding Update,
// sends each downlink packet where the router sends the uplink packet of
// the same flow, in every state of the uplinks.
func TestHomeAgentAgrees(t *testing.T) {
	for _, extra := range []string{"", "\toption default_policy 'wifi_first'\n", "\toption default_policy 'control'\n"} {
		router, r := compileExample(t, extra, "")
		ha, status := FromFlowIDs(router.FlowIDs())
		if slices.Max(status) != 0 {
			t.Fatalf("statuses %v", status)
		}
		// The home agent orders the bindings from the BID options the
		// router sent.
		var bidOpts []nemo.BID
		for _, u := range r.Uplinks {
			bidOpts = append(bidOpts, nemo.BID{ID: u.BID, Pri: u.Priority})
		}
		haOrder := BindingOrder(bidOpts, nil)
		routerOrder := UplinkOrder(r)
		flows := []pkt{
			udp(lanHost, remote, 40000, 5060),
			udp(lanOther, remote, 40000, 5061),
			udp(lanHost, remote, 40000, 5062),
			tcp(lanHost, videoCN, 40000, 443),
			tcp(lanOther, netip.MustParseAddr("2001:db8:c:1::1"), 1, 2),
			withTC(udp(lanHost, remote, 1, 2), 46<<2),
			withTC(tcp(lanHost, videoCN, 1, 2), 46<<2),
			{src: lanHost, dst: remote, proto: header.ProtoICMPv6},
			withExts(udp(lanHost, remote, 40000, 5060), dstOpts(), fragment(0, true)),
		}
		for _, usable := range [][]uint16{nil, {bidWifi}, {bidCell}, both} {
			for _, f := range flows {
				up, _ := ParsePacket(f.build())
				down, _ := ParsePacket(f.reverse().build())
				rt, _, _ := router.Targets(&up, FromMN, usableSet(usable...), routerOrder, nil)
				ht, he, _ := ha.Targets(&down, ToMN, usableSet(usable...), haOrder, nil)
				if !slices.Equal(rt, ht) {
					t.Errorf("%q usable %v, %s:%d -> %s:%d: router %v, home agent %v (%+v)",
						extra, usable, f.src, f.sport, f.dst, f.dport, rt, ht, he)
				}
			}
		}
	}
}

func TestMatchesFields(t *testing.T) {
	p := Packet{
		Src: netip.MustParseAddr("2001:db8:1::5"), Dst: netip.MustParseAddr("2001:db8:2::7"),
		Proto: header.ProtoUDP, SrcPort: 1000, DstPort: 2000, TC: 0xb9, FlowLabel: 0x12345,
	}
	sel := func(present uint32, f func(*nemo.TrafficSelector)) nemo.TrafficSelector {
		ts := nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: present}
		if f != nil {
			f(&ts)
		}
		return ts
	}
	for _, tc := range []struct {
		name    string
		ts      nemo.TrafficSelector
		toMN    bool // matches p as a downlink packet
		fromMN  bool // matches p as an uplink packet
		comment string
	}{
		{name: "any", ts: sel(0, nil), toMN: true, fromMN: true},
		{name: "no selector", ts: nemo.TrafficSelector{}},
		{name: "IPv4 selector", ts: nemo.TrafficSelector{Format: nemo.TSFormatIPv4}},
		{name: "source address", ts: sel(nemo.TSSrcAddrStart, func(ts *nemo.TrafficSelector) { ts.SrcAddrStart = p.Src }), toMN: true},
		{name: "destination address", ts: sel(nemo.TSDstAddrStart, func(ts *nemo.TrafficSelector) { ts.DstAddrStart = p.Src }), fromMN: true},
		{name: "source address range", ts: sel(nemo.TSSrcAddrStart|nemo.TSSrcAddrEnd, func(ts *nemo.TrafficSelector) {
			ts.SrcAddrStart, ts.SrcAddrEnd = p.Src.Prev(), p.Dst
		}), toMN: true, fromMN: true},
		{name: "source port", ts: sel(nemo.TSSrcPortStart, func(ts *nemo.TrafficSelector) { ts.SrcPortStart = 1000 }), toMN: true},
		{name: "destination port", ts: sel(nemo.TSDstPortStart, func(ts *nemo.TrafficSelector) { ts.DstPortStart = 1000 }), fromMN: true},
		{name: "port range", ts: sel(nemo.TSSrcPortStart|nemo.TSSrcPortEnd, func(ts *nemo.TrafficSelector) { ts.SrcPortStart, ts.SrcPortEnd = 1000, 2000 }), toMN: true, fromMN: true},
		{name: "TC upper 6 bits", ts: sel(nemo.TSTCStart, func(ts *nemo.TrafficSelector) { ts.TCStart = 0xba }), toMN: true, fromMN: true},
		{name: "TC range", ts: sel(nemo.TSTCStart|nemo.TSTCEnd, func(ts *nemo.TrafficSelector) { ts.TCStart, ts.TCEnd = 0x10, 0xb8 }), toMN: true, fromMN: true},
		{name: "TC other", ts: sel(nemo.TSTCStart, func(ts *nemo.TrafficSelector) { ts.TCStart = 0xbc })},
		{name: "flow label", ts: sel(nemo.TSFlowLabelStart, func(ts *nemo.TrafficSelector) { ts.FlowLabelStart = 0xff012345 }), toMN: true, fromMN: true},
		{name: "flow label range", ts: sel(nemo.TSFlowLabelStart|nemo.TSFlowLabelEnd, func(ts *nemo.TrafficSelector) { ts.FlowLabelStart, ts.FlowLabelEnd = 1, 0x12344 })},
		{name: "SPI", ts: sel(nemo.TSSPIStart|nemo.TSSPIEnd, func(ts *nemo.TrafficSelector) { ts.SPIEnd = 0xffffffff })},
		{name: "protocol range", ts: sel(nemo.TSProtoStart|nemo.TSProtoEnd, func(ts *nemo.TrafficSelector) { ts.ProtoStart, ts.ProtoEnd = 6, 17 }), toMN: true, fromMN: true},
		{name: "protocol", ts: sel(nemo.TSProtoStart, func(ts *nemo.TrafficSelector) { ts.ProtoStart = 6 })},
	} {
		if got := Matches(&tc.ts, &p, ToMN); got != tc.toMN {
			t.Errorf("%s, to the mobile network: %v", tc.name, got)
		}
		if got := Matches(&tc.ts, &p, FromMN); got != tc.fromMN {
			t.Errorf("%s, from the mobile network: %v", tc.name, got)
		}
	}
}

// Without usable, every BID counts as usable; a nil table only falls back.
func TestNilArguments(t *testing.T) {
	tab, _ := compileExample(t, "", "")
	p, _ := ParsePacket(withTC(udp(lanHost, remote, 1, 2), 46<<2).build())
	got, e, _ := tab.Targets(&p, FromMN, nil, nil, nil)
	if !slices.Equal(got, []uint16{bidCell, bidWifi}) || e == nil || e.Rule != "telemetry" {
		t.Errorf("nil usable: %v %v", got, e)
	}
	var none *Table
	got, e, _ = none.Targets(&p, FromMN, usableSet(bidCell), []uint16{bidWifi, bidCell}, nil)
	if !slices.Equal(got, []uint16{bidCell}) || e != nil {
		t.Errorf("nil table: %v %v", got, e)
	}
}

func TestAllocs(t *testing.T) {
	tab, r := compileExample(t, "", benchRules)
	order := UplinkOrder(r)
	b := udp(lanHost, remote, 40000, 9999).build()
	buf := make([]uint16, 0, 4)
	var alive [3]bool
	alive[bidCell] = true
	usable := func(bid uint16) bool { return int(bid) < len(alive) && alive[bid] }
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		p, _ := ParsePacket(b)
		got, _, _ := tab.Targets(&p, FromMN, usable, order, buf[:0])
		sink += len(got)
	}); n != 0 {
		t.Errorf("ParsePacket+Targets: %v allocations", n)
	}
	d := NewDedup(64)
	d.Seen(1, b)
	if n := testing.AllocsPerRun(100, func() {
		b[45]++
		if d.Seen(1, b) {
			sink++
		}
	}); n != 0 {
		t.Errorf("Dedup.Seen: %v allocations", n)
	}
	if sink == 0 {
		t.Error("no targets")
	}
}
