package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"nemod/binding"
	"nemod/header"
	"nemod/internal/netsim"
	"nemod/nemo"
	"nemod/policy"
	"nemod/tunnel"
)

var (
	hoa4   = netip.MustParseAddr("10.200.0.1")
	mnp4   = netip.MustParsePrefix("10.201.5.0/24")
	lan4   = netip.MustParseAddr("10.201.5.10")
	cn4    = netip.MustParseAddr("203.0.113.18")
	mnp4b  = netip.MustParsePrefix("10.201.6.0/24") // car2's
	other4 = netip.MustParseAddr("10.9.9.9")
)

// withIPv4 gives car1 its IPv4 home address and prefix at both ends, and
// car2 a prefix of its own.
func withIPv4(mc *tunnel.MRConfig, hc *tunnel.HAConfig) {
	mc.IPv4 = true
	hc.AddressV4 = ha4
	hc.Routers = []tunnel.HARouter{
		{HoA: hoa, Prefixes: []netip.Prefix{mnp, netip.PrefixFrom(hoa4, 32), mnp4}},
		{HoA: hoa2, Prefixes: []netip.Prefix{mnp2, mnp4b}},
	}
}

// routerUCI4 is routerUCI with an IPv4 prefix.
var routerUCI4 = strings.Replace(routerUCI, "\tlist mnp '2001:db8:100::/56'\n", "\tlist mnp '2001:db8:100::/56'\n\tlist mnp_v4 '10.201.5.0/24'\n", 1)

func newRig4(t *testing.T, flows *policy.Table, opts ...rigOption) *rig {
	t.Helper()
	r := newRig(t, flows, append([]rigOption{withIPv4}, opts...)...)
	if err := r.mr.SetIPv4(hoa4, []netip.Prefix{mnp4}); err != nil {
		t.Fatal(err)
	}
	return r
}

// useOnly registers only one of the router's bindings.
func (r *rig) useOnly(t *testing.T, b binding.BindingStatus, outer netip.AddrPort) {
	t.Helper()
	r.ha.Update(hoa, r.prefixes, []binding.Binding{{BID: b.BID, CoA: b.CoA, Outer: outer, Encap: b.Encap}}, nil)
	bs := []binding.BindingStatus{{BID: bidWifi}, {BID: bidCell}} // by uplink
	bs[b.BID-1] = b
	r.bindings = bs
	r.mr.SetBindings(bs, nil)
}

// TestIPv4BothWaysOverEachEncapsulation: the mobile network's IPv4 goes
// through the tunnel and back over IPv4-in-IPv6, IPv4 in UDP through the
// NAT and IPv4 in UDP over IPv6, byte for byte (the data plane leaves the
// TTL to the kernels), and is counted as IPv4 on its binding.
func TestIPv4BothWaysOverEachEncapsulation(t *testing.T) {
	r := newRig4(t, nil)
	up := netsim.UDP4(lan4, cn4, 4000, 7, 100, 'a', true)
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "IPv4-in-IPv6 up")
	down := netsim.UDP4(cn4, lan4, 7, 4000, 100, 'b', true)
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "IPv4-in-IPv6 down")
	if tr := r.mr.Traffic(0); tr.TxPacketsV4 != 1 || tr.RxPacketsV4 != 1 || tr.TxPackets != 1 {
		t.Fatalf("Wi-Fi binding at the router: %+v", tr)
	}
	if tr := r.ha.Traffic(hoa, bidWifi); tr.TxPacketsV4 != 1 || tr.RxPacketsV4 != 1 {
		t.Fatalf("Wi-Fi binding at the home agent: %+v", tr)
	}
	// The router's own IPv4 home address is tunnelled too.
	own := netsim.UDP4(hoa4, cn4, 1, 2, 10, 'h', false)
	r.mrTUN.Inject(own)
	expect(t, r.haTUN, own, "from the IPv4 home address")

	r.useOnly(t, binding.BindingStatus{BID: bidCell, State: binding.StateRegistered, Encap: nemo.EncapUDP4, CoA: cell4}, r.cellOuter)
	up = netsim.UDP4(lan4, cn4, 4000, 7, 100, 'c', true)
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "IPv4 in UDP/IPv4 up")
	down = netsim.UDP4(cn4, lan4, 7, 4000, 100, 'd', true)
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "IPv4 in UDP/IPv4 down")

	if err := r.mr.SendSignal(0, nemo.EncapUDP6, signal(t, hoa, ha6)); err != nil {
		t.Fatal(err)
	}
	p := <-r.haSig
	r.useOnly(t, binding.BindingStatus{BID: bidWifi, State: binding.StateRegistered, Encap: nemo.EncapUDP6, CoA: wifi6}, p.From)
	up = netsim.UDP4(lan4, cn4, 4000, 7, 300, 'e', true)
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "IPv4 in UDP/IPv6 up")
	down = netsim.UDP4(cn4, lan4, 7, 4000, 300, 'f', true)
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "IPv4 in UDP/IPv6 down")
	if tr := r.ha.Traffic(hoa, bidWifi); tr.TxPacketsV4 != 2 || tr.RxPacketsV4 != 3 {
		t.Fatalf("Wi-Fi binding at the home agent after UDP/IPv6: %+v", tr)
	}
}

// TestIPv4RouterFilters: from the mobile network, an IPv4 source outside
// its IPv4 (of its own making, or car2's) is dropped and counted as IPv4;
// before the home agent granted anything every IPv4 source is foreign;
// the LANs' IPv4 is routed into the tunnel from the start; the downlink is
// taken only from the home agent and only for the mobile network.
func TestIPv4RouterFilters(t *testing.T) {
	r := newRig(t, nil, withIPv4)
	if rt := r.mrSys.Routes4(); !reflect.DeepEqual(rt.LANs, []string{"lan0"}) || rt.HoA.IsValid() || rt.Device != "nemo0" || rt.Table != 4191 {
		t.Fatalf("IPv4 routing before the grant: %+v", rt)
	}
	early := netsim.UDP4(lan4, cn4, 1, 2, 10, 'e', false)
	r.mrTUN.Inject(early)
	counted(t, r.mr.Drops(), tunnel.DropForeignSrc, 1)
	if err := r.mr.SetIPv4(hoa4, []netip.Prefix{mnp4}); err != nil {
		t.Fatal(err)
	}
	if rt := r.mrSys.Routes4(); rt.HoA != hoa4 || !reflect.DeepEqual(rt.MNPs, []netip.Prefix{mnp4}) {
		t.Fatalf("IPv4 routing after the grant: %+v", rt)
	}
	for _, src := range []netip.Addr{other4, netip.MustParseAddr("10.201.6.10")} {
		p := netsim.UDP4(src, cn4, 1, 2, 10, 'x', false)
		r.mrTUN.Inject(p)
		quiet(t, r.haTUN, p, "foreign IPv4 source "+src.String())
	}
	counted(t, r.mr.Drops(), tunnel.DropForeignSrc, 3)
	if n := r.mr.Drops().Count4(tunnel.DropForeignSrc); n != 3 {
		t.Fatalf("IPv4 foreign sources counted %d", n)
	}
	if v := r.mr.Status().DropsV4; v["foreign_source"] != 3 {
		t.Fatalf("status drops_v4 %v", v)
	}
	if tr := r.mr.Traffic(0); tr.TxPackets != 0 {
		t.Fatalf("something was tunnelled: %+v", tr)
	}
	// A malformed IPv4 header (bad checksum).
	bad := netsim.UDP4(lan4, cn4, 1, 2, 10, 'm', false)
	bad[10] ^= 0xff
	r.mrTUN.Inject(bad)
	counted(t, r.mr.Drops(), tunnel.DropMalformed, 1)

	// IPv4-in-IPv6 from a stranger.
	c, err := r.evil.Stack().ListenIP(header.ProtoIPv4, "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := netsim.UDP4(cn4, lan4, 1, 2, 10, 'q', false)
	if _, err := c.Send(batchOf(p, netip.AddrPortFrom(wifi6, 0)), 1); err != nil {
		t.Fatal(err)
	}
	counted(t, r.mr.Drops(), tunnel.DropNotFromHA, 1)
	quiet(t, r.mrTUN, p, "IPv4-in-IPv6 from a stranger")
	// From the home agent's socket, for an IPv4 address outside the mobile
	// network.
	p = netsim.UDP4(cn4, other4, 1, 2, 10, 'r', false)
	if _, err := r.haUDP.Send(batchOf(p, r.cellOuter), 1); err != nil {
		t.Fatal(err)
	}
	counted(t, r.mr.Drops(), tunnel.DropNotForUs, 1)
	if n := r.mr.Drops().Count4(tunnel.DropNotForUs); n != 1 {
		t.Fatalf("IPv4 not-for-us counted %d", n)
	}
}

// forge4 sends inner to the home agent in IPv4-in-IPv6 from a host's
// address, bound to device when it is not empty.
func forge4(t *testing.T, from *netsim.Host, device string, inner []byte) {
	t.Helper()
	c, err := from.Stack().ListenIP(header.ProtoIPv4, device, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(batchOf(inner, netip.AddrPortFrom(ha6, 0)), 1); err != nil {
		t.Fatal(err)
	}
}

// TestIPv4HomeAgentIngressFilter: tunnelled IPv4 reaches the Internet only
// from a registered care-of address of the router whose IPv4 its inner
// source is, in IPv4-in-IPv6 and in UDP alike; the rest is counted as IPv4
// by reason. Towards the routers, IPv4 for no router or an unregistered
// one is dropped and counted.
func TestIPv4HomeAgentIngressFilter(t *testing.T) {
	r := newRig4(t, nil)
	d := r.ha.Drops()
	// Unregistered outer source, car1's prefix inside.
	p := netsim.UDP4(lan4, cn4, 1, 2, 10, 'o', false)
	forge4(t, r.evil, "", p)
	counted(t, d, tunnel.DropBadOuter, 1)
	quiet(t, r.haTUN, p, "IPv4 from an unregistered outer source")
	// And in UDP from a stranger.
	u, err := r.evil.Stack().ListenUDP("udp6", "", netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Send(batchOf(p, netip.AddrPortFrom(ha6, nemo.UDPPort)), 1)
	counted(t, d, tunnel.DropBadOuter, 2)
	// From car1's registered Wi-Fi care-of address: an inner source outside
	// its IPv4, and one in car2's prefix.
	for _, src := range []netip.Addr{other4, netip.MustParseAddr("10.201.6.10")} {
		p := netsim.UDP4(src, cn4, 1, 2, 10, 's', false)
		forge4(t, r.mrHost(), "wlan0", p)
		quiet(t, r.haTUN, p, "inner source "+src.String())
	}
	counted(t, d, tunnel.DropBadSource, 1) // 10.9.9.9 belongs to no router
	counted(t, d, tunnel.DropBadOuter, 3)  // car2's prefix: car2 registered nothing
	if v := r.ha.Status().DropsV4; v["bad_outer_source"] != 3 || v["bad_inner_source"] != 1 {
		t.Fatalf("IPv4 drops %v", v)
	}
	// Towards the routers.
	r.haTUN.Inject(netsim.UDP4(cn4, other4, 1, 2, 10, 'n', false))
	counted(t, d, tunnel.DropNoRoute, 1)
	r.haTUN.Inject(netsim.UDP4(cn4, netip.MustParseAddr("10.201.6.1"), 1, 2, 10, 'b', false))
	counted(t, d, tunnel.DropNoBinding, 1)
	// Genuine IPv4 flows.
	g := netsim.UDP4(lan4, cn4, 1, 2, 10, 'g', false)
	r.mrTUN.Inject(g)
	expect(t, r.haTUN, g, "genuine IPv4")
	// Routed into the home agent's device: the home link and what car1
	// registered, IPv4 too; not car2's prefix, which it has not registered.
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:ffff:1::/64"), netip.PrefixFrom(hoa, 128), mnp, netip.PrefixFrom(hoa4, 32), mnp4}
	if got := r.haSys.Prefixes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("routes into the home agent's device: %v, want %v", got, want)
	}
}

// TestIPv4HairpinBetweenMobileNetworks: IPv4 from one mobile network to
// another of the same home agent goes from the first router's tunnel into
// the second's, both ways, never into the home agent's TUN device, and is
// counted as hairpinned IPv4; the second's IPv4 prefix is routed into the
// device only while it is registered.
func TestIPv4HairpinBetweenMobileNetworks(t *testing.T) {
	r := newRig4(t, nil)
	host := r.net.Host("mr2")
	l := host.Link("wlan0", wifi2.String())
	sys := &netsim.RouterSystem{}
	mr2, err := tunnel.NewMR(tunnel.MRConfig{
		HoA: hoa2, MNPs: []netip.Prefix{mnp2}, HA: ha6, Devices: []string{"wlan0"}, LANs: []string{"lan0"},
		OnSignal: func([]byte) {}, Order: []uint16{bidWifi}, Stack: host.Stack(), System: sys, IPv4: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mr2.Close() })
	if err := mr2.SetUplink(0, l.Index); err != nil {
		t.Fatal(err)
	}
	if err := mr2.SetIPv4(netip.Addr{}, []netip.Prefix{mnp4b}); err != nil {
		t.Fatal(err)
	}
	mr2.SetBindings([]binding.BindingStatus{{BID: bidWifi, State: binding.StateRegistered, Encap: nemo.EncapIPv6, CoA: wifi2}}, nil)
	r.ha.Update(hoa2, []netip.Prefix{mnp2, mnp4b}, []binding.Binding{{BID: bidWifi, CoA: wifi2, Outer: netip.AddrPortFrom(wifi2, 0), Encap: nemo.EncapIPv6}}, nil)
	tun2 := sys.TUN("nemo0")
	if !slices.Contains(r.haSys.Prefixes(), mnp4b) {
		t.Fatalf("car2 registered, its IPv4 prefix not routed: %v", r.haSys.Prefixes())
	}

	lan4b := netip.MustParseAddr("10.201.6.10")
	there := netsim.UDP4(lan4, lan4b, 4000, 5000, 200, 'h', true)
	r.mrTUN.Inject(there)
	expect(t, tun2, there, "car1's IPv4 LAN to car2's")
	quiet(t, r.haTUN, there, "car1's IPv4 LAN to car2's, at the home agent's TUN device")
	back := netsim.UDP4(lan4b, lan4, 5000, 4000, 200, 'b', true)
	tun2.Inject(back)
	expect(t, r.mrTUN, back, "car2's IPv4 LAN to car1's")
	quiet(t, r.haTUN, back, "car2's IPv4 LAN to car1's, at the home agent's TUN device")
	if hp := r.ha.Hairpin(); hp.Packets != 2 || hp.Octets != uint64(len(there)+len(back)) || hp.Dropped != 0 {
		t.Fatalf("hairpin %+v", hp)
	}
	if tr := r.ha.Traffic(hoa2, bidWifi); tr.TxPacketsV4 != 1 || tr.RxPacketsV4 != 1 {
		t.Fatalf("car2's binding at the home agent: %+v", tr)
	}
	// car2 gone: its IPv4 prefix leaves the routes, and what is for it is
	// dropped in the data plane, not handed to the kernel.
	r.ha.Update(hoa2, nil, nil, nil)
	if slices.Contains(r.haSys.Prefixes(), mnp4b) {
		t.Fatalf("car2 deregistered, its IPv4 prefix still routed: %v", r.haSys.Prefixes())
	}
	lost := netsim.UDP4(lan4, lan4b, 4000, 5000, 200, 'l', true)
	r.mrTUN.Inject(lost)
	for start := time.Now(); r.ha.Hairpin().Dropped != 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("hairpin %+v", r.ha.Hairpin())
		}
	}
	quiet(t, r.haTUN, lost, "to an unregistered mobile network's IPv4, at the TUN device")
}

func (r *rig) mrHost() *netsim.Host { return r.wlan.Host() }

// TestIPv4TooBig: at both ends, an IPv4 packet with DF too big for its
// binding is answered with ICMP fragmentation needed telling the tunnel's
// MTU; one without DF is fragmented, and the fragments carry it whole.
func TestIPv4TooBig(t *testing.T) {
	r := newRig4(t, nil)
	r.mr.SetBindings(r.bindings, func(int) int { return 1400 })
	big := netsim.UDP4(lan4, cn4, 1, 2, 1400-20-8, 'B', true) // 1400 octets: 40 too many for IPv4-in-IPv6 on a 1400 link
	r.mrTUN.Inject(big)
	counted(t, r.mr.Drops(), tunnel.DropTooBig, 1)
	icmp := waitICMP4(t, r.mrTUN)
	if icmp.Dst() != lan4 || icmp.Src() != hoa4 || binary.BigEndian.Uint16(icmp.Payload()[6:]) != 1360 {
		t.Fatalf("router's fragmentation needed: to %s from %s, MTU %d", icmp.Dst(), icmp.Src(), binary.BigEndian.Uint16(icmp.Payload()[6:]))
	}
	noDF := netsim.UDP4(lan4, cn4, 1, 2, 1400-20-8, 'F', false)
	r.mrTUN.Inject(noDF)
	reassembled(t, r.haTUN, noDF, 1360)

	bigDown := netsim.UDP4(cn4, lan4, 2, 1, 1480, 'D', true)
	r.haTUN.Inject(bigDown)
	counted(t, r.ha.Drops(), tunnel.DropTooBig, 1)
	icmp = waitICMP4(t, r.haTUN)
	if icmp.Dst() != cn4 || icmp.Src() != ha4 || int(binary.BigEndian.Uint16(icmp.Payload()[6:])) != tunnel.MTU(1500, nemo.EncapUDP6) {
		t.Fatalf("home agent's fragmentation needed: to %s from %s, MTU %d", icmp.Dst(), icmp.Src(), binary.BigEndian.Uint16(icmp.Payload()[6:]))
	}
	noDFDown := netsim.UDP4(cn4, lan4, 2, 1, 1480, 'G', false)
	r.haTUN.Inject(noDFDown)
	reassembled(t, r.mrTUN, noDFDown, tunnel.MTU(1500, nemo.EncapUDP6))
}

func waitICMP4(t *testing.T, dev *netsim.TUN) header.IPv4 {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case p := <-dev.Written():
			ip, err := header.ParseIPv4(p)
			if err == nil && ip.Protocol() == header.ProtoICMP && ip.Payload()[0] == header.ICMPv4DestUnreach && ip.Payload()[1] == header.ICMPv4FragNeeded {
				if header.Checksum(ip.Payload(), 0) != 0 {
					t.Fatal("ICMP with a wrong checksum")
				}
				return ip
			}
		case <-deadline:
			t.Fatal("no fragmentation needed")
		}
	}
}

// reassembled reads fragments of orig off dev, each at most mtu octets,
// and checks they add up to its payload.
func reassembled(t *testing.T, dev *netsim.TUN, orig []byte, mtu int) {
	t.Helper()
	want := header.IPv4(orig).Payload()
	got := make([]byte, len(want))
	n := 0
	deadline := time.After(2 * time.Second)
	for n < len(want) {
		select {
		case p := <-dev.Written():
			ip, err := header.ParseIPv4(p)
			if err != nil || ip.Src() != header.IPv4(orig).Src() || ip.Dst() != header.IPv4(orig).Dst() {
				continue
			}
			if len(p) > mtu {
				t.Fatalf("a %d-octet fragment over a %d tunnel", len(p), mtu)
			}
			n += copy(got[ip.FragmentOffset():], ip.Payload())
		case <-deadline:
			t.Fatalf("fragments carried %d of %d octets", n, len(want))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("fragments do not add up to the packet")
	}
}

// TestIPv4SteeringAndDuplication: IPv4 rules steer both ways by the
// binding their policy names; a duplicated IPv4 flow goes by both and is
// delivered once at each end.
func TestIPv4SteeringAndDuplication(t *testing.T) {
	tab := compile(t, routerUCI4+`
config policy 'voice'
	list use 'cell'
	list use 'wifi'
config policy 'control'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'
config rule 'sip4'
	option dest_ip '203.0.113.0/24'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
config rule 'telemetry4'
	option proto 'udp'
	option dest_port '9000'
	option policy 'control'
`)
	r := newRig4(t, tab)
	sip := netsim.UDP4(lan4, cn4, 4000, 5060, 50, 's', false)
	r.mrTUN.Inject(sip)
	expect(t, r.haTUN, sip, "SIP over IPv4 up")
	sipDown := netsim.UDP4(cn4, lan4, 5060, 4000, 50, 'S', false)
	r.haTUN.Inject(sipDown)
	expect(t, r.mrTUN, sipDown, "SIP over IPv4 down")
	if w, c := r.ha.Traffic(hoa, bidWifi), r.ha.Traffic(hoa, bidCell); c.RxPacketsV4 != 1 || c.TxPacketsV4 != 1 || w.RxPackets != 0 || w.TxPackets != 0 {
		t.Fatalf("SIP not on the cellular binding: Wi-Fi %+v, cellular %+v", w, c)
	}
	for i := 0; i < 3; i++ {
		p := netsim.UDP4(lan4, cn4, 4000, 9000, 20, byte('0'+i), false)
		r.mrTUN.Inject(p)
		expect(t, r.haTUN, p, "duplicated IPv4 up")
		quiet(t, r.haTUN, p, "second IPv4 copy up")
		q := netsim.UDP4(cn4, lan4, 9000, 4000, 20, byte('a'+i), false)
		r.haTUN.Inject(q)
		expect(t, r.mrTUN, q, "duplicated IPv4 down")
		quiet(t, r.mrTUN, q, "second IPv4 copy down")
	}
	if d := r.ha.Flows(hoa).Duplicates; d != 3 {
		t.Fatalf("home agent suppressed %d IPv4 duplicates, want 3", d)
	}
	if d := r.mr.Flows().Duplicates; d != 3 {
		t.Fatalf("router suppressed %d IPv4 duplicates, want 3", d)
	}
}

// TestIPv4DirectBreakout: a direct IPv4 rule is handed to the host's local
// breakout with the mobile network's IPv4 prefixes, and follows them.
func TestIPv4DirectBreakout(t *testing.T) {
	tab := compile(t, routerUCI4+`
config rule 'road4'
	option dest_ip '198.18.0.0/15'
	option policy 'direct'
`)
	r := newRig4(t, tab)
	if err := r.mr.SetDirect(tab); err != nil {
		t.Fatal(err)
	}
	b := r.mrSys.Breakout()
	if len(b.Entries) != 1 || b.Entries[0].TS.Format != nemo.TSFormatIPv4 || !reflect.DeepEqual(b.MNPs4, []netip.Prefix{mnp4}) {
		t.Fatalf("breakout %+v", b)
	}
	if err := r.mr.SetIPv4(hoa4, []netip.Prefix{mnp4b}); err != nil {
		t.Fatal(err)
	}
	if b := r.mrSys.Breakout(); !reflect.DeepEqual(b.MNPs4, []netip.Prefix{mnp4b}) || len(b.Entries) != 1 {
		t.Fatalf("breakout after the prefix changed %+v", b)
	}
	p := netsim.UDP4(lan4, netip.MustParseAddr("198.18.0.1"), 1, 2, 10, 'r', false)
	r.mrTUN.Inject(netsim.UDP4(netip.MustParseAddr("10.201.6.10"), netip.MustParseAddr("198.18.0.1"), 1, 2, 10, 'r', false))
	counted(t, r.mr.Drops(), tunnel.DropDirect, 1)
	r.mrTUN.Inject(p)
	counted(t, r.mr.Drops(), tunnel.DropForeignSrc, 1) // 10.201.5.10 is no longer ours
}

// TestHomeAgentWithoutIPv6: a home agent with no IPv6 address of its own
// opens no IPv6 socket and carries both families in UDP over IPv4.
func TestHomeAgentWithoutIPv6(t *testing.T) {
	r := newRig4(t, nil, func(mc *tunnel.MRConfig, hc *tunnel.HAConfig) { hc.NoIPv6 = true })
	r.useOnly(t, binding.BindingStatus{BID: bidCell, State: binding.StateRegistered, Encap: nemo.EncapUDP4, CoA: cell4}, r.cellOuter)
	for _, up := range [][]byte{netsim.UDP4(lan4, cn4, 1, 2, 30, '4', false), netsim.UDP6(lan, cn, 1, 2, 30, '6')} {
		r.mrTUN.Inject(up)
		expect(t, r.haTUN, up, "up in UDP over IPv4")
	}
	// Nothing listens for IPv4-in-IPv6.
	p := netsim.UDP4(lan4, cn4, 1, 2, 10, 'n', false)
	forge4(t, r.mrHost(), "wlan0", p)
	quiet(t, r.haTUN, p, "IPv4-in-IPv6 to a home agent without IPv6")
}
