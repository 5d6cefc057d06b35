package tunnel

import (
	"net/netip"
	"testing"

	"nemod/header"
	"nemod/nemo"
	"nemod/netio"
)

// nopConn stands for a socket the decisions only compare.
type nopConn struct{}

func (nopConn) Recv(*netio.Batch) (int, error)      { return 0, nil }
func (nopConn) Send(*netio.Batch, int) (int, error) { return 0, nil }
func (nopConn) Close() error                        { return nil }

// FuzzDecisions: no packet makes a per-packet decision panic, at either
// end, for either family; what the router forwards from the mobile network
// has a source of its own, and what the home agent forwards from a router
// came through that router's registered binding with a source of its.
func FuzzDecisions(f *testing.F) {
	lan4, cn4 := netip.MustParseAddr("10.201.5.10"), netip.MustParseAddr("203.0.113.18")
	mnp4 := netip.MustParsePrefix("10.201.5.0/24")
	mnp6 := netip.MustParsePrefix("2001:db8:100::/56")
	udp4 := header.AppendIPv4(nil, lan4, cn4, header.ProtoUDP, 64, 8)
	f.Add(append(udp4, 0, 1, 0, 2, 0, 8, 0, 0))
	f.Add(header.AppendIPv6(nil, netip.MustParseAddr("2001:db8:100::10"), netip.MustParseAddr("2001:db8:c::1"), header.ProtoNone, 64, 0))
	f.Add([]byte{0x45, 0, 0, 20})
	outer := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:a::2"), 0)
	b := &routerBinding{bid: 1, encap: nemo.EncapIPv6, mtu: 1360, stats: new(Stats), conn: nopConn{}, conn4: nopConn{}}
	rt := &routerTable{hoa: netip.MustParseAddr("2001:db8:ffff:1::100"), mnps: []netip.Prefix{mnp6},
		bindings: []*routerBinding{b}, order: []uint16{1}, flows: newFlowState(nil),
		v4: routerV4{hoa: netip.MustParseAddr("10.200.0.1"), mnps: []netip.Prefix{mnp4}}}
	slot := &routerSlot{hoa: rt.hoa}
	view := &routerView{hoa: rt.hoa, prefixes: []netip.Prefix{mnp6, mnp4}, order: []uint16{1}, flows: newFlowState(nil),
		bindings: []*agentBinding{{bid: 1, encap: nemo.EncapIPv6, outer: outer, stats: new(Stats)}}}
	slot.view.Store(view)
	at := newPrefixTable(map[netip.Prefix]*routerSlot{mnp6: slot, mnp4: slot, netip.PrefixFrom(rt.hoa, 128): slot})
	f.Fuzz(func(t *testing.T, p []byte) {
		v := header.Version(p)
		if out, d, _ := rt.fromNetwork(p, nil); d == Forward {
			fl, err := header.ParseFlow(p)
			if err != nil || len(out) == 0 || !(rt.ours(fl.Src) || rt.ours4(fl.Src)) || (v == 4) != fl.Src.Is4() {
				t.Fatalf("router forwarded %v from %s", err, fl.Src)
			}
		}
		rt.toNetwork(p, 0)
		towardsRouter(p, at, 1452, 1e9, 0, nil)
		if bb, d, _ := fromRouter(p, outer, nemo.EncapIPv6, at, 0); d == Forward {
			// The home agent checks the IP header, not what follows it.
			src, err := source(p)
			if err != nil || bb == nil || !view.covers(src) {
				t.Fatalf("home agent forwarded %v from %s", err, src)
			}
		}
		if _, d, _ := fromRouter(p, netip.AddrPortFrom(netip.MustParseAddr("2001:db8:666::1"), 0), nemo.EncapIPv6, at, 0); d == Forward {
			t.Fatal("forwarded from an unregistered care-of address")
		}
	})
}

// source is a packet's source address, behind its version's gate.
func source(p []byte) (netip.Addr, error) {
	if header.Version(p) == 4 {
		ip, err := header.ParseIPv4(p)
		if err != nil {
			return netip.Addr{}, err
		}
		return ip.Src(), nil
	}
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return netip.Addr{}, err
	}
	return ip.Src(), nil
}
