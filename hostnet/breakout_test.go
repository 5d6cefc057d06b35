package hostnet

import (
	"net/netip"
	"strings"
	"testing"

	"nemod/nemo"
)

var mnps = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::/56"), netip.MustParsePrefix("2001:db8:300::/56")}

func TestDirectRules(t *testing.T) {
	// The compiled form of: dest_ip 2001:db8:5::/48, proto udp,
	// dest_port 53, src_port 1000-2000, dscp EF.
	ts := nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd | nemo.TSProtoStart | nemo.TSSrcPortStart | nemo.TSDstPortStart | nemo.TSDstPortEnd | nemo.TSTCStart,
		SrcAddrStart: netip.MustParseAddr("2001:db8:5::"), SrcAddrEnd: netip.MustParseAddr("2001:db8:5:ffff:ffff:ffff:ffff:ffff"),
		ProtoStart: 17, SrcPortStart: 53, DstPortStart: 1000, DstPortEnd: 2000, TCStart: 46 << 2,
	}
	rs := directRules(&ts, mnps)
	if len(rs) != 2 {
		t.Fatalf("%d rules, want one per mobile network prefix", len(rs))
	}
	for i, r := range rs {
		if r.Src.String() != mnps[i].String() || r.Dst.String() != "2001:db8:5::/48" || r.IPProto != 17 || r.Dport.Start != 53 || r.Dport.End != 53 ||
			r.Sport.Start != 1000 || r.Sport.End != 2000 || r.Tos != 0xb8 {
			t.Fatalf("rule %d: %+v dport %+v sport %+v", i, r, r.Dport, r.Sport)
		}
	}
	if p := rangePrefix(netip.MustParseAddr("2001:db8::1"), netip.Addr{}, false); p.String() != "2001:db8::1/128" {
		t.Fatal(p)
	}
}

// TestDirectRulesKeepSourcesInside: a direct rule naming local addresses
// breaks out only those of them inside a mobile network prefix; one naming
// none of ours installs nothing, so a foreign source never breaks out.
func TestDirectRulesKeepSourcesInside(t *testing.T) {
	for _, tc := range []struct{ local, want string }{
		{"2001:db8:100::10", "2001:db8:100::10/128"},
		{"2001:db8:100::10-2001:db8:100::1f", "2001:db8:100::10/124"},
		{"2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:100::/56"},
		{"2001:db8:999::1", ""},
	} {
		lo, hi, hasEnd := tc.local, "", false
		if i := strings.IndexByte(tc.local, '-'); i > 0 {
			lo, hi, hasEnd = tc.local[:i], tc.local[i+1:], true
		}
		ts := nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: nemo.TSDstAddrStart, DstAddrStart: netip.MustParseAddr(lo)}
		if hasEnd {
			ts.Present |= nemo.TSDstAddrEnd
			ts.DstAddrEnd = netip.MustParseAddr(hi)
		}
		var got []string
		for _, r := range directRules(&ts, mnps[:1]) {
			got = append(got, r.Src.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("local %s: sources %v, want %q", tc.local, got, tc.want)
		}
	}
}

func TestBreakoutScript(t *testing.T) {
	s := breakoutScript([]string{"wlan0", "wwan0"}, mnps)
	if !strings.Contains(s, `oifname { "wlan0", "wwan0" } ip6 saddr { 2001:db8:100::/56, 2001:db8:300::/56 } masquerade`) {
		t.Fatal(s)
	}
}
