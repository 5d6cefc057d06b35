package nemo

import (
	"net/netip"
	"testing"
)

// heartbeatTsharkCases: the liveness probes of every path kind and the
// nemod capabilities option, as tshark must read them: a native
// Heartbeat, a Heartbeat inside UDP over IPv4 and over IPv6 (RFC 5555
// framing, port 4191 decoded as IPv6), and a Binding Update carrying the
// option. None may look malformed.
func heartbeatTsharkCases(t *testing.T) []tsharkCase {
	var cs []tsharkCase
	native, err := AppendHeartbeatPacket(nil, indCoA, indHA, &Heartbeat{Seq: 0x01020304})
	if err != nil {
		t.Fatal(err)
	}
	cs = append(cs, tsharkCase{name: "native Heartbeat", pkt: native, mh: native[40:], psrc: indCoA, pdst: indHA, check: func(r reporter, d *dissection) {
		want(r, d, "ipv6.src", indCoA.String())
		want(r, d, "mip6.mhtype", "13")
		want(r, d, "mip6.hb.seqnr", "16909060")
		wantFlag(r, d, "mip6.hb.r_flag", false)
		wantFlag(r, d, "mip6.hb.u_flag", false)
	}})
	for _, outer := range []struct {
		name     string
		coa, dst netip.Addr
	}{{"Heartbeat in UDPv4", indCoA4, indHA4}, {"Heartbeat in UDPv6", indCoA2, indHA}} {
		inner, err := AppendHeartbeatPacket(nil, indHA, indHoA, &Heartbeat{Response: true, Seq: 9})
		if err != nil {
			t.Fatal(err)
		}
		var pkt []byte
		if outer.coa.Is4() {
			pkt = udpIn4(outer.dst, outer.coa, UDPPort, 49152, inner)
		} else {
			pkt = udpIn6(outer.dst, outer.coa, UDPPort, 49152, inner)
		}
		cs = append(cs, tsharkCase{name: outer.name, pkt: pkt, mh: pkt[len(pkt)-16:], psrc: indHA, pdst: indHoA, check: func(r reporter, d *dissection) {
			want(r, d, "udp.srcport", "4191")
			want(r, d, "udp.checksum.status", "1")
			want(r, d, "mip6.mhtype", "13")
			want(r, d, "mip6.hb.seqnr", "9")
			wantFlag(r, d, "mip6.hb.r_flag", true)
		}})
	}
	unbound := &Heartbeat{Response: true, Seq: 10}
	unbound.SetNemodUnbound()
	ub, err := AppendHeartbeatPacket(nil, indHA, indHoA, unbound)
	if err != nil {
		t.Fatal(err)
	}
	ubPkt := udpIn4(indHA4, indCoA4, UDPPort, 49152, ub)
	cs = append(cs, tsharkCase{name: "unbound Heartbeat in UDPv4", pkt: ubPkt, mh: ubPkt[len(ubPkt)-(len(ub)-40):], psrc: indHA, pdst: indHoA, check: func(r reporter, d *dissection) {
		want(r, d, "mip6.mhtype", "13")
		want(r, d, "mip6.hb.seqnr", "10")
		want(r, d, "mip6.vsm.vendorId", "32473")
		want(r, d, "mip6.vsm.subtype", "2")
	}})
	bu := &BindingUpdate{Seq: 77, Flags: BUFlagA | BUFlagH | BUFlagR, Lifetime: 150, Options: Options{
		BIDs: []BID{{ID: 1, CoA: indCoA}}, HasTimestamp: true, Timestamp: NTPTime(indTime),
		Auth: []Auth{{Subtype: AuthMNHA, SPI: 0x1234}},
	}}
	bu.SetNemodCaps(CapUDP6Offload)
	pkt, mh := encodePacket(t, bu, indCoA, indHA, indHoA, netip.Addr{})
	cs = append(cs, tsharkCase{name: "BU with nemod caps", pkt: pkt, mh: mh, psrc: indHoA, pdst: indHA, check: func(r reporter, d *dissection) {
		want(r, d, "mip6.mhtype", "5")
		want(r, d, "mip6.vsm.vendorId", "32473")
		want(r, d, "mip6.vsm.subtype", "1")
		wantOptions(r, d, "bi", "vsm", "mseg_id", "auth")
	}})
	return cs
}
