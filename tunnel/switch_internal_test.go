package tunnel

import (
	"net/netip"
	"testing"
	"time"

	"nemod/nemo"
)

// A binding that just moved from IPv6-in-IPv6 to UDP over IPv6 on the
// same care-of address still takes native packets from that address for
// switchGrace, and only from it; after that only UDP.
func TestNativeAfterSwitchToUDP6(t *testing.T) {
	hoa := netip.MustParseAddr("2001:db8:ffff:1::100")
	coa := netip.MustParseAddr("2001:db8:a::2")
	now := time.Now().UnixNano()
	s := &routerSlot{hoa: hoa}
	b := &agentBinding{bid: 1, encap: nemo.EncapUDP6, outer: netip.AddrPortFrom(coa, 40001), hoa: hoa, stats: new(Stats),
		nativeUntil: now + int64(switchGrace)}
	s.view.Store(&routerView{hoa: hoa, bindings: []*agentBinding{b}, flows: newFlowState(nil)})
	table := newPrefixTable(map[netip.Prefix]*routerSlot{netip.PrefixFrom(hoa, 128): s})
	pkt := make([]byte, 40)
	pkt[0], pkt[6], pkt[7] = 0x60, 59, 64 // no next header
	src := hoa.As16()
	copy(pkt[8:24], src[:])
	dst := netip.MustParseAddr("2001:db8:ffff::1").As16()
	copy(pkt[24:40], dst[:])

	for _, tc := range []struct {
		name  string
		outer netip.AddrPort
		e     nemo.Encap
		at    int64
		want  Drop
	}{
		{"UDP from the binding", b.outer, nemo.EncapUDP6, now, Forward},
		{"native from the care-of address, fresh", netip.AddrPortFrom(coa, 0), nemo.EncapIPv6, now, Forward},
		{"native from another address", netip.AddrPortFrom(netip.MustParseAddr("2001:db8:b::2"), 0), nemo.EncapIPv6, now, DropBadOuter},
		{"native after the grace", netip.AddrPortFrom(coa, 0), nemo.EncapIPv6, now + int64(switchGrace), DropBadOuter},
		{"UDP after the grace", b.outer, nemo.EncapUDP6, now + int64(switchGrace), Forward},
	} {
		got, d, _ := fromRouter(pkt, tc.outer, tc.e, table, tc.at)
		if d != tc.want || (d == Forward && got != b) {
			t.Errorf("%s: %v %v, want %v", tc.name, got, d, tc.want)
		}
	}
	b.nativeUntil = 0 // a binding that was never native
	if _, d, _ := fromRouter(pkt, netip.AddrPortFrom(coa, 0), nemo.EncapIPv6, table, now); d != DropBadOuter {
		t.Errorf("native packet to a UDP/IPv6 binding without a switch: %v", d)
	}
}
