package hostnet

import (
	"net/netip"
	"strings"
	"testing"

	"nemod/nemo"
)

var mnps4 = []netip.Prefix{netip.MustParsePrefix("10.201.5.0/24")}

// An IPv4 direct rule breaks out from the IPv4 prefix only, to the
// addresses its selector names, whatever the prefix's family in the
// range arithmetic (an IPv4 range is 32 bits, not a mapped 128).
func TestDirectRulesIPv4(t *testing.T) {
	ts := nemo.TrafficSelector{Format: nemo.TSFormatIPv4, Present: nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd | nemo.TSProtoStart,
		SrcAddrStart: netip.MustParseAddr("198.18.0.0"), SrcAddrEnd: netip.MustParseAddr("198.19.255.255"), ProtoStart: 17}
	rs := directRules(&ts, mnps4)
	if len(rs) != 1 || rs[0].Src.String() != "10.201.5.0/24" || rs[0].Dst.String() != "198.18.0.0/15" || rs[0].IPProto != 17 {
		t.Fatalf("rules %+v", rs)
	}
	ts = nemo.TrafficSelector{Format: nemo.TSFormatIPv4, Present: nemo.TSDstAddrStart | nemo.TSDstAddrEnd,
		DstAddrStart: netip.MustParseAddr("10.201.5.16"), DstAddrEnd: netip.MustParseAddr("10.201.5.31")}
	if rs := directRules(&ts, mnps4); len(rs) != 1 || rs[0].Src.String() != "10.201.5.16/28" {
		t.Fatalf("local range %+v", rs)
	}
	if p := rangePrefix(netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.255.255.255"), true); p.String() != "10.0.0.0/8" {
		t.Fatal(p)
	}
}

// The IPv4 tables: local breakout masqueraded per uplink, the home
// agent's masquerade_v4 SNAT to its address, both removable; an IPv4-only
// network's IPv6 breakout table is only removed.
func TestIPv4Scripts(t *testing.T) {
	s := breakoutScript4([]string{"wlan0", "wwan0"}, mnps4)
	if !strings.Contains(s, `table ip nemod_breakout`) || !strings.Contains(s, `oifname { "wlan0", "wwan0" } ip saddr { 10.201.5.0/24 } masquerade`) {
		t.Fatal(s)
	}
	if breakoutScript4(nil, nil) != clearBreakoutScript4 || breakoutScript(nil, nil) != clearBreakoutScript {
		t.Fatal("no prefixes must clear the table")
	}
	m := masqueradeScript("nemoha0", []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16"), netip.MustParsePrefix("10.199.0.1/32")}, netip.MustParseAddr("198.51.100.1"))
	if !strings.Contains(m, `oifname != "nemoha0" ip saddr { 10.200.0.0/16, 10.199.0.1/32 } snat to 198.51.100.1`) || !strings.HasPrefix(m, "add table ip nemod_masquerade4\ndelete table ip nemod_masquerade4\n") {
		t.Fatal(m)
	}
}
