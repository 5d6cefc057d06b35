package policy

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"nemod/config"
	"nemod/header"
	"nemod/nemo"
)

const ipv4Router = "\tlist mnp_v4 '10.201.5.0/24'\n"

// IPv4 rules of the kinds the issue names, for a router with an IPv4
// prefix.
const ipv4Rules = `
config rule 'telemetry4'
	option proto 'udp'
	option src_ip '10.201.5.10'
	option dest_ip '192.0.2.0/24'
	option dest_port '7000-7001'
	option dscp 'AF41'
	option policy 'control'

config rule 'ping4'
	option proto 'icmp'
	option policy 'voice'

config rule 'road4'
	option dest_ip '198.18.0.0/15'
	option policy 'direct'
`

var (
	lan4  = netip.MustParseAddr("10.201.5.10")
	cn4   = netip.MustParseAddr("192.0.2.7")
	road4 = netip.MustParseAddr("198.18.0.1")
)

// IPv4 rules compile to RFC 6088 IPv4 selectors, the rule's dest in the
// source fields; a rule naming no address gets one entry set per family in
// its block (IPv4's after IPv6's); ICMP goes to IPv4 only; the catch-alls
// come for both families.
func TestCompileIPv4(t *testing.T) {
	tab, _ := compileExample(t, ipv4Router+"\toption default_policy 'wifi_first'\n", ipv4Rules)
	byRule := map[string][]Entry{}
	for _, e := range tab.Entries {
		byRule[e.Rule] = append(byRule[e.Rule], e)
	}
	sip := byRule["sip"]
	if len(sip) != 4 || sip[0].TS.Format != nemo.TSFormatIPv6 || sip[2].TS.Format != nemo.TSFormatIPv4 ||
		!slices.Equal([]uint16{sip[0].Pri, sip[1].Pri, sip[2].Pri, sip[3].Pri}, []uint16{16, 17, 18, 19}) ||
		!slices.Equal(sip[2].BIDs, []uint16{bidCell}) || !slices.Equal(sip[3].BIDs, []uint16{bidWifi}) {
		t.Fatalf("sip for both families:\n%s", &Table{Entries: sip})
	}
	if v := sip[2].TS; v.Present != sipTS.Present || v.SrcPortStart != 5060 || v.SrcPortEnd != 5061 || v.ProtoStart != 17 {
		t.Errorf("sip's IPv4 selector %+v", v)
	}
	if v := byRule["video"]; len(v) != 2 || v[0].TS.Format != nemo.TSFormatIPv6 {
		t.Errorf("an IPv6 rule stays IPv6 only:\n%s", &Table{Entries: v})
	}
	want := nemo.TrafficSelector{
		Format: nemo.TSFormatIPv4,
		Present: nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd | nemo.TSDstAddrStart | nemo.TSSrcPortStart | nemo.TSSrcPortEnd |
			nemo.TSTCStart | nemo.TSTCEnd | nemo.TSProtoStart,
		SrcAddrStart: netip.MustParseAddr("192.0.2.0"), SrcAddrEnd: netip.MustParseAddr("192.0.2.255"),
		DstAddrStart: lan4, SrcPortStart: 7000, SrcPortEnd: 7001, TCStart: 34 << 2, TCEnd: 34 << 2, ProtoStart: 17,
	}
	if e := byRule["telemetry4"]; len(e) != 1 || !e[0].Duplicate || !reflect.DeepEqual(e[0].TS, want) {
		t.Errorf("telemetry4 %+v", e)
	}
	if e := byRule["ping4"]; len(e) != 2 || e[0].TS.Format != nemo.TSFormatIPv4 || e[0].TS.ProtoStart != header.ProtoICMP {
		t.Errorf("ping4 %+v", e)
	}
	if e := byRule["road4"]; len(e) != 1 || !e[0].Direct || e[0].FID != 0 || e[0].TS.Format != nemo.TSFormatIPv4 {
		t.Errorf("road4 %+v", e)
	}
	def := byRule[DefaultRule]
	if len(def) != 4 || def[0].Pri != DefaultPri || def[2].Pri != DefaultPri+2 || def[2].TS.Format != nemo.TSFormatIPv4 || def[2].TS.Present != 0 {
		t.Errorf("catch-alls:\n%s", &Table{Entries: def})
	}
	// Registered with the home agent: every entry but the direct ones, and
	// the IPv4 selectors encode (RFC 6088 §3.1).
	ids := tab.FlowIDs()
	if len(ids) != len(tab.Entries)-2 {
		t.Fatalf("%d flow IDs for %d entries", len(ids), len(tab.Entries))
	}
	for _, f := range ids {
		if _, err := f.TS.MarshalBinary(); err != nil {
			t.Errorf("FID %d: %v", f.FID, err)
		}
	}
	// The home agent's table from those options agrees, entry for entry.
	ha, st := FromFlowIDs(ids)
	for i, s := range st {
		if s != 0 {
			t.Errorf("FID %d refused: %d", ids[i].FID, s)
		}
	}
	if !ha.Equal(tab.Registered()) {
		t.Errorf("home agent's table differs:\n%s\nwant\n%s", ha, tab.Registered())
	}
}

// ipv4UDP is an IPv4 UDP packet.
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, tos uint8) []byte {
	u := make([]byte, 12)
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], 12)
	p := header.AppendIPv4(nil, src, dst, header.ProtoUDP, 64, len(u))
	p[1] = tos
	header.IPv4(p).SetChecksum()
	return append(p, u...)
}

// IPv4 packets are steered by the IPv4 entries both ways, at the router
// (from the mobile network) and at the home agent (towards it), as IPv6
// ones are: the duplicated flow to both uplinks, SIP to the cellular one
// first, what no rule takes by the IPv4 catch-all.
func TestTargetsIPv4(t *testing.T) {
	tab, _ := compileExample(t, ipv4Router+"\toption default_policy 'wifi_first'\n", ipv4Rules)
	ha, _ := FromFlowIDs(tab.FlowIDs())
	all := usableSet(bidWifi, bidCell)
	for _, tc := range []struct {
		name string
		up   []byte
		want []uint16
	}{
		{"telemetry duplicated", ipv4UDP(lan4, cn4, 40000, 7000, 34<<2), []uint16{bidCell, bidWifi}},
		{"sip to cellular", ipv4UDP(lan4, cn4, 40000, 5060, 0), []uint16{bidCell}},
		{"other by the catch-all", ipv4UDP(lan4, cn4, 40000, 9999, 0), []uint16{bidWifi}},
		{"telemetry with another DSCP", ipv4UDP(lan4, cn4, 40000, 7000, 0), []uint16{bidWifi}},
	} {
		p, ok := ParsePacket(tc.up)
		if !ok {
			t.Fatalf("%s: not parsed", tc.name)
		}
		got, _, direct := tab.Targets(&p, FromMN, all, nil, nil)
		if direct || !slices.Equal(got, tc.want) {
			t.Errorf("%s up: %v (direct %v), want %v", tc.name, got, direct, tc.want)
		}
		// The answer, at the home agent.
		down := p
		down.Src, down.Dst, down.SrcPort, down.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		if got, _, _ := ha.Targets(&down, ToMN, all, nil, nil); !slices.Equal(got, tc.want) {
			t.Errorf("%s down: %v, want %v", tc.name, got, tc.want)
		}
	}
	p, _ := ParsePacket(ipv4UDP(lan4, road4, 1, 2, 0))
	if _, e, direct := tab.Targets(&p, FromMN, all, nil, nil); !direct || e.Rule != "road4" {
		t.Errorf("roadside IPv4 not direct: %+v", e)
	}
	// Failover: SIP moves to the Wi-Fi when the cellular binding goes.
	p, _ = ParsePacket(ipv4UDP(lan4, cn4, 1, 5060, 0))
	if got, _, _ := tab.Targets(&p, FromMN, usableSet(bidWifi), nil, nil); !slices.Equal(got, []uint16{bidWifi}) {
		t.Errorf("sip without cellular: %v", got)
	}
}

// An IPv4-only mobile network (no IPv6 prefix) compiles its address-less
// rules and catch-alls for IPv4 only; a router without IPv4 compiles as
// before.
func TestCompileSingleFamily(t *testing.T) {
	r := loadRouter(t, ipv4Router+"\toption default_policy 'wifi_first'\n", "")
	r.MNPs = nil
	r.Rules = slices.DeleteFunc(r.Rules, func(ru config.Rule) bool { return ru.DestIP.IsValid() || ru.SrcIP.IsValid() })
	tab, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tab.Entries {
		if e.TS.Format != nemo.TSFormatIPv4 {
			t.Errorf("IPv6 entry in an IPv4-only network: %+v", e)
		}
	}
	if len(tab.Entries) != 4 { // sip's two and the two catch-alls
		t.Errorf("entries:\n%s", tab)
	}
	v6, _ := compileExample(t, "\toption default_policy 'wifi_first'\n", "")
	if !reflect.DeepEqual(v6.Entries, wantDefault) {
		t.Errorf("an IPv6-only router's table changed:\n%s", v6)
	}
}

// Both copies of a duplicated IPv4 packet count as one even if their time
// to live differs; another packet does not.
func TestDedupIPv4(t *testing.T) {
	d := NewDedup(8)
	a := ipv4UDP(lan4, cn4, 1, 7000, 0)
	b := append([]byte(nil), a...)
	header.IPv4(b).DecrementTTL()
	c := ipv4UDP(lan4, cn4, 2, 7000, 0)
	if d.Seen(1, a) || !d.Seen(1, b) || d.Seen(1, c) {
		t.Fatal("IPv4 duplicates not told apart")
	}
}
