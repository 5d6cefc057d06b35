package tunnel_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"nemod/binding"
	"nemod/internal/netsim"
	"nemod/nemo"
	"nemod/tunnel"
)

var (
	wifi2 = netip.MustParseAddr("2001:db8:b::2")
	lan2  = netip.MustParseAddr("2001:db8:200::10")
)

// secondRouter adds the data plane of car2 (hoa2, mnp2) with one native
// uplink, registered at the home agent.
func (r *rig) secondRouter(t *testing.T) (*tunnel.MR, *netsim.TUN) {
	t.Helper()
	host := r.net.Host("mr2")
	l := host.Link("wlan0", wifi2.String())
	sys := &netsim.RouterSystem{}
	mr, err := tunnel.NewMR(tunnel.MRConfig{
		HoA: hoa2, MNPs: []netip.Prefix{mnp2}, HA: ha6, Devices: []string{"wlan0"}, LANs: []string{"lan0"},
		OnSignal: func([]byte) {}, Order: []uint16{bidWifi}, Stack: host.Stack(), System: sys,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mr.Close() })
	if err := mr.SetUplink(0, l.Index); err != nil {
		t.Fatal(err)
	}
	bs := []binding.BindingStatus{{BID: bidWifi, State: binding.StateRegistered, Encap: nemo.EncapIPv6, CoA: wifi2}}
	mr.SetBindings(bs, nil)
	r.ha.Update(hoa2, []netip.Prefix{mnp2}, []binding.Binding{{BID: bidWifi, CoA: wifi2, Outer: netip.AddrPortFrom(wifi2, 0), Encap: nemo.EncapIPv6}}, nil)
	return mr, sys.TUN("nemo0")
}

// TestHairpinBetweenMobileNetworks: a packet from one mobile network to
// another served by the same home agent goes from the first router's
// tunnel into the second's, both ways (one of them through the NAT in
// UDP), and never into the home agent's TUN device.
func TestHairpinBetweenMobileNetworks(t *testing.T) {
	r := newRig(t, nil)
	_, tun2 := r.secondRouter(t)
	there := netsim.UDP6(lan, lan2, 4000, 5000, 200, 'h')
	r.mrTUN.Inject(there)
	expect(t, tun2, there, "car1's LAN to car2's LAN")
	quiet(t, r.haTUN, there, "car1's LAN to car2's LAN, at the home agent's TUN device")
	// Back, by car1's bindings: Wi-Fi first; then only the cellular one
	// (UDP through the NAT).
	back := netsim.UDP6(lan2, lan, 5000, 4000, 200, 'b')
	tun2.Inject(back)
	expect(t, r.mrTUN, back, "car2's LAN to car1's LAN")
	r.register(nil, binding.BindingStatus{BID: bidWifi, State: binding.StateDown},
		binding.BindingStatus{BID: bidCell, State: binding.StateRegistered, Encap: nemo.EncapUDP4, CoA: cell4})
	back2 := netsim.UDP6(lan2, lan, 5000, 4000, 200, 'c')
	tun2.Inject(back2)
	expect(t, r.mrTUN, back2, "car2's LAN to car1's LAN over the NAT")
	quiet(t, r.haTUN, back2, "car2's LAN to car1's LAN, at the home agent's TUN device")
	hp := r.ha.Hairpin()
	if hp.Packets != 3 || hp.Octets != uint64(len(there)+len(back)+len(back2)) || hp.Dropped != 0 {
		t.Fatalf("hairpin %+v", hp)
	}
	if tr := r.ha.Traffic(hoa, bidCell); tr.TxPackets != 1 {
		t.Fatalf("car1's cellular binding: %+v", tr)
	}
	// car2 gone: its network is not reached, and the packet does not go
	// to the kernel either.
	r.ha.Update(hoa2, nil, nil, nil)
	lost := netsim.UDP6(lan, lan2, 4000, 5000, 200, 'l')
	r.mrTUN.Inject(lost)
	for start := time.Now(); r.ha.Hairpin().Dropped != 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("hairpin %+v", r.ha.Hairpin())
		}
	}
	quiet(t, r.haTUN, lost, "to an unregistered mobile network, at the TUN device")
	// Traffic to the Internet still goes to the kernel.
	up := netsim.UDP6(lan, cn, 4000, 7, 100, 'i')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "LAN to correspondent")
}

// TestRoutesFollowRegistrations: what is routed into the TUN device is
// the home link and each registered router's home address and prefixes,
// not what is configured; routers added at run time are found once
// committed.
func TestRoutesFollowRegistrations(t *testing.T) {
	r := newRig(t, nil) // car1 registered, car2 configured only
	home := netip.MustParsePrefix("2001:db8:ffff:1::/64")
	want := func(what string, ps ...netip.Prefix) {
		t.Helper()
		got := r.haSys.Prefixes()
		slices.SortFunc(got, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		ps = append(ps, home)
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		if !slices.Equal(got, ps) {
			t.Fatalf("%s: routed %v, want %v", what, got, ps)
		}
	}
	car1 := netip.PrefixFrom(hoa, 128)
	want("car1 registered", car1, mnp)
	if got := r.ha.Routed(); !slices.Equal(got, []netip.Prefix{mnp, car1}) {
		t.Fatalf("Routed %v", got)
	}
	// A refresh changes nothing.
	n := r.haSys.RouteChanges
	r.register(nil, r.bindings...)
	if r.haSys.RouteChanges != n {
		t.Fatal("a refresh changed the routes")
	}
	// Added at run time: not routed until registered, reached after Commit.
	car9 := netip.MustParseAddr("2001:db8:ffff:1::900")
	mnp9 := netip.MustParsePrefix("2001:db8:900::/56")
	r.ha.AddRouter(tunnel.HARouter{HoA: car9, Prefixes: []netip.Prefix{mnp9}})
	want("car9 added", car1, mnp)
	r.ha.Update(car9, []netip.Prefix{mnp9}, []binding.Binding{{BID: 1, CoA: wifi2, Outer: netip.AddrPortFrom(wifi2, 0), Encap: nemo.EncapIPv6}}, nil)
	want("car9 registered", car1, mnp, netip.PrefixFrom(car9, 128), mnp9)
	r.ha.Commit()
	down := netsim.UDP6(cn, netip.MustParseAddr("2001:db8:900::1"), 7, 4000, 50, 'n')
	r.haTUN.Inject(down)
	for start := time.Now(); r.ha.Traffic(car9, 1).TxPackets != 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("car9 not reached after Commit")
		}
	}
	// A reload of the configured routers keeps it.
	if err := r.ha.SetRouters([]tunnel.HARouter{{HoA: hoa, Prefixes: []netip.Prefix{mnp}}}); err != nil {
		t.Fatal(err)
	}
	want("after a reload", car1, mnp, netip.PrefixFrom(car9, 128), mnp9)
	// Removed: its routes go.
	r.ha.RemoveRouter(car9)
	r.ha.Commit()
	want("car9 removed", car1, mnp)
	// car1 de-registers.
	r.ha.Update(hoa, nil, nil, nil)
	want("car1 gone")
}
