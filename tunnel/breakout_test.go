package tunnel

import (
	"net/netip"
	"testing"

	"nemod/nemo"
)

func TestDirectRule(t *testing.T) {
	// The compiled form of: dest_ip 2001:db8:5::/48, proto udp,
	// dest_port 53, src_port 1000-2000, dscp EF.
	ts := nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd | nemo.TSProtoStart | nemo.TSSrcPortStart | nemo.TSDstPortStart | nemo.TSDstPortEnd | nemo.TSTCStart,
		SrcAddrStart: netip.MustParseAddr("2001:db8:5::"), SrcAddrEnd: netip.MustParseAddr("2001:db8:5:ffff:ffff:ffff:ffff:ffff"),
		ProtoStart: 17, SrcPortStart: 53, DstPortStart: 1000, DstPortEnd: 2000, TCStart: 46 << 2,
	}
	r := directRule(&ts)
	if r.Dst.String() != "2001:db8:5::/48" || r.Src != nil || r.IPProto != 17 || r.Dport.Start != 53 || r.Dport.End != 53 ||
		r.Sport.Start != 1000 || r.Sport.End != 2000 || r.Tos != 0xb8 {
		t.Fatalf("%+v dport %+v sport %+v", r, r.Dport, r.Sport)
	}
	if p := rangePrefix(netip.MustParseAddr("2001:db8::1"), netip.Addr{}, false); p.String() != "2001:db8::1/128" {
		t.Fatal(p)
	}
}

func TestFixZeroUDPChecksum(t *testing.T) {
	p := make([]byte, 60)
	p[0], p[6] = 0x60, 17
	fixZeroUDPChecksum(p)
	if p[46] != 0xff || p[47] != 0xff {
		t.Fatal("zero UDP checksum not turned into 0xffff")
	}
	p[46], p[47], p[6] = 0, 0, 6 // TCP: untouched
	fixZeroUDPChecksum(p)
	if p[46] != 0 || p[47] != 0 {
		t.Fatal("TCP touched")
	}
}
