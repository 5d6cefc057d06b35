package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/header"
	"nemod/internal/netsim"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
	"nemod/tunnel"
)

// Both data planes in one process, over an in-process network: a mobile
// router with a Wi-Fi uplink (IPv6 and IPv4) and a cellular one (IPv4
// behind a NAT), its home agent, and a host elsewhere that forges.

var (
	ha6    = netip.MustParseAddr("2001:db8:ffff::1")
	ha4    = netip.MustParseAddr("198.51.100.1")
	hoa    = netip.MustParseAddr("2001:db8:ffff:1::100")
	mnp    = netip.MustParsePrefix("2001:db8:100::/56")
	lan    = netip.MustParseAddr("2001:db8:100::10")
	cn     = netip.MustParseAddr("2001:db8:c::1")
	wifi6  = netip.MustParseAddr("2001:db8:a::2")
	cell4  = netip.MustParseAddr("100.64.0.2")
	cgn    = netip.MustParseAddr("192.0.2.2")
	hoa2   = netip.MustParseAddr("2001:db8:ffff:1::200")
	mnp2   = netip.MustParsePrefix("2001:db8:200::/56")
	forger = netip.MustParseAddr("2001:db8:666::1")
)

const (
	bidWifi = 1
	bidCell = 2
)

type rig struct {
	t          *testing.T
	wlan, wwan *netsim.Link
	nat        *netsim.NAT
	evil       *netsim.Host
	mrSys      *netsim.RouterSystem
	haSys      *netsim.AgentSystem
	mr         *tunnel.MR
	ha         *tunnel.HA
	mrTUN      *netsim.TUN
	haTUN      *netsim.TUN
	haUDP      netio.Conn
	haSig      chan tunnel.SignalPacket
	mrSig      chan []byte
	answers    chan answer
	cellOuter  netip.AddrPort
	bindings   []binding.BindingStatus
	net        *netsim.Net
	// prefixes are what the home agent forwards to the router.
	prefixes []netip.Prefix
	// caps is what the bindings' router offered (nemo.CapHeartbeat: the
	// home agent probes them itself).
	caps nemo.Caps
}

// answer is one probe answer the router's data plane handed on.
type answer struct {
	uplink  int
	seq     uint32
	unbound bool
}

// rigOption adjusts the data planes' configurations before they start.
type rigOption func(*tunnel.MRConfig, *tunnel.HAConfig)

// newRig wires the two data planes together and registers both bindings
// with the flow table flows (nil: none).
func newRig(t *testing.T, flows *policy.Table, opts ...rigOption) *rig {
	t.Helper()
	n := netsim.New()
	mrHost, haHost := n.Host("mr"), n.Host("ha")
	r := &rig{t: t, evil: n.Host("evil"), mrSys: &netsim.RouterSystem{}, haSys: &netsim.AgentSystem{},
		haSig: make(chan tunnel.SignalPacket, 64), mrSig: make(chan []byte, 64), answers: make(chan answer, 4096), net: n, prefixes: []netip.Prefix{mnp}}
	r.wlan = mrHost.Link("wlan0", wifi6.String(), "192.168.50.2")
	r.wwan = mrHost.Link("wwan0", cell4.String())
	r.nat = r.wwan.NAT44(cgn.String())
	haHost.Link("eth0", ha6.String(), ha4.String())
	r.evil.Link("eth0", forger.String())

	udp, err := haHost.Stack().ListenUDP("udp", "", netip.AddrPortFrom(netip.Addr{}, nemo.UDPPort))
	if err != nil {
		t.Fatal(err)
	}
	r.haUDP = udp
	hc := tunnel.HAConfig{
		Address: ha6, HomePrefix: netip.MustParsePrefix("2001:db8:ffff:1::/64"), UDP: udp,
		OnSignal: func(ps []tunnel.SignalPacket) {
			for _, p := range ps {
				r.haSig <- p
			}
		},
		Routers: []tunnel.HARouter{{HoA: hoa, Prefixes: []netip.Prefix{mnp}}, {HoA: hoa2, Prefixes: []netip.Prefix{mnp2}}},
		Stack:   haHost.Stack(), System: r.haSys,
	}
	mc := tunnel.MRConfig{
		HoA: hoa, MNPs: []netip.Prefix{mnp}, HA: ha6, HAv4: ha4, Devices: []string{"wlan0", "wwan0"}, LANs: []string{"lan0"},
		OnSignal: func(p []byte) { r.mrSig <- p }, Order: []uint16{bidWifi, bidCell},
		OnProbeAnswer: func(uplink int, seq uint32, at time.Time, unbound bool) {
			r.answers <- answer{uplink, seq, unbound}
		},
		Stack: mrHost.Stack(), System: r.mrSys,
	}
	for _, o := range opts {
		o(&mc, &hc)
	}
	if len(hc.Routers) > 0 {
		r.prefixes = hc.Routers[0].Prefixes
	}
	r.ha, err = tunnel.NewHA(hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ha.Close() })
	r.haTUN = r.haSys.TUN("nemoha0")

	r.mr, err = tunnel.NewMR(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.mr.Close() })
	r.mrTUN = r.mrSys.TUN("nemo0")
	for i, l := range []*netsim.Link{r.wlan, r.wwan} {
		if err := r.mr.SetUplink(i, l.Index); err != nil {
			t.Fatal(err)
		}
	}
	// The cellular binding's outer address is the NAT's mapping, which the
	// home agent learns from the signalling that crosses it.
	if err := r.mr.SendSignal(1, nemo.EncapUDP4, signal(t, hoa, ha6)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-r.haSig:
		r.cellOuter = p.From
	case <-time.After(2 * time.Second):
		t.Fatal("no signalling reached the home agent over the cellular uplink")
	}
	if r.cellOuter.Addr() != cgn {
		t.Fatalf("cellular signalling came from %s, not through the NAT", r.cellOuter)
	}
	r.register(flows, binding.BindingStatus{BID: bidWifi, State: binding.StateRegistered, Encap: nemo.EncapIPv6, CoA: wifi6},
		binding.BindingStatus{BID: bidCell, State: binding.StateRegistered, Encap: nemo.EncapUDP4, CoA: cell4})
	return r
}

// register installs the bindings at both ends, in uplink order.
func (r *rig) register(flows *policy.Table, bs ...binding.BindingStatus) {
	var hb []binding.Binding
	for _, b := range bs {
		if b.State != binding.StateRegistered {
			continue
		}
		outer := netip.AddrPortFrom(b.CoA, 0)
		if b.Encap == nemo.EncapUDP4 {
			outer = r.cellOuter
		}
		hb = append(hb, binding.Binding{BID: b.BID, CoA: b.CoA, Outer: outer, Encap: b.Encap, Caps: r.caps})
	}
	r.ha.Update(hoa, r.prefixes, hb, flows)
	r.mr.SetFlows(flows)
	r.bindings = bs
	r.mr.SetBindings(bs, nil)
}

// signal is a Mobility Header packet (a Binding Refresh Request) from src
// to dst, which the data planes take for signalling.
func signal(t *testing.T, src, dst netip.Addr) []byte {
	mh, err := nemo.Marshal(&nemo.BindingRefreshRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := nemo.AppendPacket(nil, src, dst, netip.Addr{}, netip.Addr{}, 64, mh)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// expect waits for a packet equal to want to come out of the device.
func expect(t *testing.T, dev *netsim.TUN, want []byte, what string) {
	t.Helper()
	if !dev.Expect(want) {
		t.Fatalf("%s: not delivered", what)
	}
}

// quiet checks that nothing equal to p comes out of the device for a while.
func quiet(t *testing.T, dev *netsim.TUN, p []byte, what string) {
	t.Helper()
	if !dev.Quiet(p, 150*time.Millisecond) {
		t.Fatalf("%s: delivered", what)
	}
}

// counted waits for a drop counter to reach want.
func counted(t *testing.T, d *tunnel.Drops, reason tunnel.Drop, want uint64) {
	t.Helper()
	for start := time.Now(); d.Count(reason) < want; time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%s: counted %d, want %d", reason, d.Count(reason), want)
		}
	}
	if got := d.Count(reason); got != want {
		t.Fatalf("%s: counted %d, want %d", reason, got, want)
	}
}

func compile(t *testing.T, uci string) *policy.Table {
	t.Helper()
	f, err := config.Parse("router.uci", []byte(uci))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := policy.Compile(f.Router)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

const routerUCI = `
config router 'main'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::100'
	list mnp '2001:db8:100::/56'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
config uplink 'cell'
	option device 'wwan0'
	option bid '2'
`

// TestBothWaysOverEachEncapsulation: a LAN host's packet goes through the
// tunnel to the home agent's device, and the answer back, over IPv6-in-IPv6
// and over UDP/IPv4 through the NAT; each is counted on its binding.
func TestBothWaysOverEachEncapsulation(t *testing.T) {
	r := newRig(t, nil)
	up := netsim.UDP6(lan, cn, 4000, 7, 100, 'a')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "LAN to correspondent over Wi-Fi")
	down := netsim.UDP6(cn, lan, 7, 4000, 100, 'b')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "correspondent to LAN over Wi-Fi")
	if tr := r.mr.Traffic(0); tr.TxPackets != 1 || tr.RxPackets != 1 || tr.TxBytes != uint64(len(up)) {
		t.Fatalf("Wi-Fi binding at the router: %+v", tr)
	}
	if tr := r.ha.Traffic(hoa, bidWifi); tr.TxPackets != 1 || tr.RxPackets != 1 {
		t.Fatalf("Wi-Fi binding at the home agent: %+v", tr)
	}

	// Wi-Fi goes: everything moves to the cellular binding.
	r.register(nil, binding.BindingStatus{BID: bidWifi, State: binding.StateDown},
		binding.BindingStatus{BID: bidCell, State: binding.StateRegistered, Encap: nemo.EncapUDP4, CoA: cell4})
	up = netsim.UDP6(lan, cn, 4000, 7, 100, 'c')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "LAN to correspondent over the cellular NAT")
	down = netsim.UDP6(cn, lan, 7, 4000, 100, 'd')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "correspondent to LAN over the cellular NAT")
	if tr := r.ha.Traffic(hoa, bidCell); tr.TxPackets != 1 || tr.RxPackets != 1 {
		t.Fatalf("cellular binding at the home agent: %+v", tr)
	}
	if got := r.mrTUN.MTU(); got != tunnel.MTU(1500, nemo.EncapUDP4) {
		t.Fatalf("tunnel MTU %d with only the UDP/IPv4 binding", got)
	}
}

// TestUDPOverIPv6: the firewall fallback encapsulation carries both ways,
// and the router's packets leave from the binding's care-of address.
func TestUDPOverIPv6(t *testing.T) {
	r := newRig(t, nil)
	if err := r.mr.SendSignal(0, nemo.EncapUDP6, signal(t, hoa, ha6)); err != nil {
		t.Fatal(err)
	}
	p := <-r.haSig
	if p.From.Addr() != wifi6 {
		t.Fatalf("UDP/IPv6 signalling from %s, not the care-of address", p.From)
	}
	r.ha.Update(hoa, []netip.Prefix{mnp}, []binding.Binding{{BID: bidWifi, CoA: wifi6, Outer: p.From, Encap: nemo.EncapUDP6}}, nil)
	r.mr.SetBindings([]binding.BindingStatus{{BID: bidWifi, State: binding.StateRegistered, Encap: nemo.EncapUDP6, CoA: wifi6}}, nil)
	up := netsim.UDP6(lan, cn, 4000, 7, 300, 'e')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "LAN to correspondent over UDP/IPv6")
	down := netsim.UDP6(cn, lan, 7, 4000, 300, 'f')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "correspondent to LAN over UDP/IPv6")
}

// TestRouterDropsForeignSources: packets from the mobile network whose
// source is neither in its prefix nor its home address, or that spoof
// another router's prefix, are dropped and counted, never tunnelled.
func TestRouterDropsForeignSources(t *testing.T) {
	r := newRig(t, nil)
	foreign := netsim.UDP6(netip.MustParseAddr("2001:db8:999::10"), cn, 1, 2, 10, 'x')
	spoofed := netsim.UDP6(netip.MustParseAddr("2001:db8:200::10"), cn, 1, 2, 10, 'y')
	r.mrTUN.Inject(foreign)
	r.mrTUN.Inject(spoofed)
	counted(t, r.mr.Drops(), tunnel.DropForeignSrc, 2)
	// The kernel's own Multicast Listener Report on the device, from the
	// device's link-local address: not the mobile network's, and not
	// counted as a foreign source.
	report := netsim.UDP6(netip.MustParseAddr("fe80::e5ae:2f10:8a3e:710f"), netip.MustParseAddr("ff02::16"), 1, 2, 10, 'm')
	r.mrTUN.Inject(report)
	counted(t, r.mr.Drops(), tunnel.DropLinkScope, 1)
	if n := r.mr.Drops().Count(tunnel.DropForeignSrc); n != 2 {
		t.Fatalf("foreign sources counted: %d", n)
	}
	quiet(t, r.haTUN, foreign, "foreign source")
	quiet(t, r.haTUN, spoofed, "spoofed source")
	if tr := r.mr.Traffic(0); tr.TxPackets != 0 {
		t.Fatalf("a foreign packet was sent: %+v", tr)
	}
	// The router's own traffic from its home address is tunnelled.
	own := netsim.UDP6(hoa, cn, 1, 2, 10, 'z')
	r.mrTUN.Inject(own)
	expect(t, r.haTUN, own, "home address")
	if r.mrSys.Routes().LANs[0] != "lan0" {
		t.Fatalf("the LAN's traffic is not routed into the tunnel: %+v", r.mrSys.Routes())
	}
}

// forgeTunnelled sends inner to the home agent in IPv6-in-IPv6 from a
// host's address.
func (r *rig) forgeTunnelled(t *testing.T, from *netsim.Host, inner []byte) {
	t.Helper()
	c, err := from.Stack().ListenIP(header.ProtoIPv6, "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := batchOf(inner, netip.AddrPortFrom(ha6, 0))
	if _, err := c.Send(b, 1); err != nil {
		t.Fatal(err)
	}
}

// TestHomeAgentIngressFilter: a tunnelled packet reaches the Internet only
// from a registered care-of address of the router its source belongs to;
// every other is dropped and counted by its reason.
func TestHomeAgentIngressFilter(t *testing.T) {
	r := newRig(t, nil)
	d := r.ha.Drops()

	// From an unregistered outer source, with car1's prefix inside.
	p := netsim.UDP6(lan, cn, 1, 2, 10, 'o')
	r.forgeTunnelled(t, r.evil, p)
	counted(t, d, tunnel.DropBadOuter, 1)
	quiet(t, r.haTUN, p, "unregistered outer source")

	// From a stranger, with a source no router has.
	p = netsim.UDP6(netip.MustParseAddr("2001:db8:999::1"), cn, 1, 2, 10, 's')
	r.forgeTunnelled(t, r.evil, p)
	counted(t, d, tunnel.DropBadSource, 1)

	// Truncated: the payload length says 8 octets more than arrived. The
	// length is one that `40 + p[4]<<8 | p[5]` let through.
	p = netsim.UDP6(lan, cn, 1, 2, 4, 't')[:44]
	binary.BigEndian.PutUint16(p[4:], 8)
	r.forgeTunnelled(t, r.evil, p)
	counted(t, d, tunnel.DropMalformed, 1)

	// Not an IP packet at all.
	r.forgeTunnelled(t, r.evil, []byte{0x20, 1, 2, 3})
	counted(t, d, tunnel.DropNotIP, 1)

	// Genuine traffic still flows.
	p = netsim.UDP6(lan, cn, 1, 2, 10, 'g')
	r.mrTUN.Inject(p)
	expect(t, r.haTUN, p, "genuine packet")

	// Towards the routers: an address no router has, and a router with no
	// binding.
	r.haTUN.Inject(netsim.UDP6(cn, netip.MustParseAddr("2001:db8:999::1"), 1, 2, 10, 'n'))
	counted(t, d, tunnel.DropNoRoute, 1)
	// The kernel's own report on the home agent's device.
	r.haTUN.Inject(netsim.UDP6(netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::16"), 1, 2, 10, 'm'))
	counted(t, d, tunnel.DropLinkScope, 1)
	if n := d.Count(tunnel.DropNoRoute); n != 1 {
		t.Fatalf("no route counted: %d", n)
	}
	r.haTUN.Inject(netsim.UDP6(cn, netip.MustParseAddr("2001:db8:200::1"), 1, 2, 10, 'b'))
	counted(t, d, tunnel.DropNoBinding, 1)
	if got := r.haSys.Prefixes(); len(got) != 3 {
		t.Fatalf("routes into the home agent's device: %v", got)
	}
}

// TestRouterDownlinkFilter: the router takes tunnelled packets only from
// its home agent, and only for its own network.
func TestRouterDownlinkFilter(t *testing.T) {
	r := newRig(t, nil)
	d := r.mr.Drops()
	c, err := r.evil.Stack().ListenIP(header.ProtoIPv6, "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := netsim.UDP6(cn, lan, 1, 2, 10, 'q')
	if _, err := c.Send(batchOf(p, netip.AddrPortFrom(wifi6, 0)), 1); err != nil {
		t.Fatal(err)
	}
	counted(t, d, tunnel.DropNotFromHA, 1)
	quiet(t, r.mrTUN, p, "packet from a stranger")
	// From the home agent's own socket, for an address outside the mobile
	// network.
	p = netsim.UDP6(cn, netip.MustParseAddr("2001:db8:999::1"), 1, 2, 10, 'r')
	if _, err := r.haUDP.Send(batchOf(p, r.cellOuter), 1); err != nil {
		t.Fatal(err)
	}
	counted(t, d, tunnel.DropNotForUs, 1)
	quiet(t, r.mrTUN, p, "packet for another network")
}

// TestSteeringByFlow: rules send each flow by the binding their policy
// names, both ways; other traffic takes the first binding.
func TestSteeringByFlow(t *testing.T) {
	tab := compile(t, routerUCI+`
config policy 'voice'
	list use 'cell'
	list use 'wifi'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
`)
	r := newRig(t, tab)
	sip := netsim.UDP6(lan, cn, 4000, 5060, 50, 's')
	other := netsim.UDP6(lan, cn, 4000, 80, 50, 'o')
	r.mrTUN.Inject(sip)
	expect(t, r.haTUN, sip, "SIP up")
	r.mrTUN.Inject(other)
	expect(t, r.haTUN, other, "other traffic up")
	if w, c := r.ha.Traffic(hoa, bidWifi), r.ha.Traffic(hoa, bidCell); w.RxPackets != 1 || c.RxPackets != 1 {
		t.Fatalf("up: Wi-Fi %+v, cellular %+v; want one each", w, c)
	}
	sipDown := netsim.UDP6(cn, lan, 5060, 4000, 50, 'S')
	r.haTUN.Inject(sipDown)
	expect(t, r.mrTUN, sipDown, "SIP down")
	if c := r.ha.Traffic(hoa, bidCell); c.TxPackets != 1 {
		t.Fatalf("SIP down not on the cellular binding: %+v", c)
	}
	fl := r.mr.Flows()
	if len(fl.Flows) == 0 || fl.Flows[0].Rule != "sip" || fl.Flows[0].Packets != 1 {
		t.Fatalf("router's flow counters: %+v", fl)
	}
}

// TestDuplicationDeliversOnce: a duplicated flow goes by both bindings
// and each end delivers one copy.
func TestDuplicationDeliversOnce(t *testing.T) {
	tab := compile(t, routerUCI+`
config policy 'control'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'
config rule 'telemetry'
	option proto 'udp'
	option dest_port '9000'
	option policy 'control'
`)
	r := newRig(t, tab)
	for i := 0; i < 5; i++ {
		p := netsim.UDP6(lan, cn, 4000, 9000, 20, byte('0'+i))
		r.mrTUN.Inject(p)
		expect(t, r.haTUN, p, "duplicated packet up")
		quiet(t, r.haTUN, p, "second copy up")
		q := netsim.UDP6(cn, lan, 9000, 4000, 20, byte('a'+i))
		r.haTUN.Inject(q)
		expect(t, r.mrTUN, q, "duplicated packet down")
		quiet(t, r.mrTUN, q, "second copy down")
	}
	if w, c := r.ha.Traffic(hoa, bidWifi), r.ha.Traffic(hoa, bidCell); w.RxPackets != 5 || c.RxPackets != 5 || w.TxPackets != 5 || c.TxPackets != 5 {
		t.Fatalf("each copy by each binding: Wi-Fi %+v, cellular %+v", w, c)
	}
	if d := r.mr.Flows().Duplicates; d != 5 {
		t.Fatalf("router suppressed %d duplicates, want 5", d)
	}
	if d := r.ha.Flows(hoa).Duplicates; d != 5 {
		t.Fatalf("home agent suppressed %d duplicates, want 5", d)
	}
}

// TestPacketTooBig: a packet larger than its binding carries is answered
// with Packet Too Big telling the binding's MTU, at both ends.
func TestPacketTooBig(t *testing.T) {
	r := newRig(t, nil)
	r.mr.SetBindings(r.bindings, func(i int) int { return 1400 })
	big := netsim.UDP6(lan, cn, 1, 2, 1400-40-8, 'B') // 1400 octets: 40 too many for IPv6-in-IPv6 on a 1400 link
	r.mrTUN.Inject(big)
	counted(t, r.mr.Drops(), tunnel.DropTooBig, 1)
	ptb := waitICMP(t, r.mrTUN)
	if ptb.Dst() != lan || ptb.Src() != hoa || binary.BigEndian.Uint32(ptb.Payload()[4:]) != 1360 {
		t.Fatalf("router's PTB: to %s from %s, MTU %d", ptb.Dst(), ptb.Src(), binary.BigEndian.Uint32(ptb.Payload()[4:]))
	}
	if r.mrTUN.MTU() != 1360 {
		t.Fatalf("tunnel MTU %d, want 1360", r.mrTUN.MTU())
	}
	bigDown := netsim.UDP6(cn, lan, 2, 1, 1460, 'D')
	r.haTUN.Inject(bigDown)
	counted(t, r.ha.Drops(), tunnel.DropTooBig, 1)
	ptb = waitICMP(t, r.haTUN)
	if ptb.Dst() != cn || ptb.Src() != ha6 || binary.BigEndian.Uint32(ptb.Payload()[4:]) != uint32(tunnel.MTU(1500, nemo.EncapUDP6)) {
		t.Fatalf("home agent's PTB: to %s from %s, MTU %d", ptb.Dst(), ptb.Src(), binary.BigEndian.Uint32(ptb.Payload()[4:]))
	}
}

func waitICMP(t *testing.T, dev *netsim.TUN) header.IPv6 {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case p := <-dev.Written():
			ip, err := header.ParseIPv6(p)
			if err == nil && ip.NextHeader() == header.ProtoICMPv6 && ip.Payload()[0] == header.ICMPv6PacketTooBig {
				if header.Checksum(ip.Payload(), header.PseudoHeaderSum(ip.Src(), ip.Dst(), header.ProtoICMPv6, len(ip.Payload()))) != 0 {
					t.Fatal("Packet Too Big with a wrong checksum")
				}
				return ip
			}
		case <-deadline:
			t.Fatal("no Packet Too Big")
		}
	}
}

// TestProbesAreAnswered: a Heartbeat on each path kind comes back,
// which moves the binding's liveness clock and hands the answer to the
// daemon; a probe from no binding is counted and not answered, an old
// router's 8-octet probe still is.
func TestProbesAreAnswered(t *testing.T) {
	r := newRig(t, nil)
	for i := range 2 {
		if !r.mr.Heard(i).IsZero() {
			t.Fatalf("uplink %d heard before any probe", i)
		}
	}
	native, err := nemo.AppendHeartbeatPacket(nil, wifi6, ha6, &nemo.Heartbeat{Seq: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.mr.SendSignal(0, nemo.EncapIPv6, native); err != nil {
		t.Fatal(err)
	}
	inUDP, err := nemo.AppendHeartbeatPacket(nil, hoa, ha6, &nemo.Heartbeat{Seq: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.mr.SendSignal(1, nemo.EncapUDP4, inUDP); err != nil {
		t.Fatal(err)
	}
	got := map[int]answer{}
	for len(got) < 2 {
		select {
		case a := <-r.answers:
			got[a.uplink] = a
		case <-time.After(2 * time.Second):
			t.Fatalf("answers %v", got)
		}
	}
	if got[0] != (answer{0, 7, false}) || got[1] != (answer{1, 8, false}) {
		t.Fatalf("answers %v", got)
	}
	for i := range 2 {
		if r.mr.Heard(i).IsZero() {
			t.Fatalf("uplink %d: the answer did not count as hearing from the home agent", i)
		}
	}
	// A probe from a host with no binding and no router's home address.
	c, err := r.evil.Stack().ListenUDP("udp6", "", netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	evil, _ := nemo.AppendHeartbeatPacket(nil, forger, ha6, &nemo.Heartbeat{Seq: 9})
	c.Send(batchOf(evil, netip.AddrPortFrom(ha6, nemo.UDPPort)), 1)
	counted(t, r.ha.Drops(), tunnel.DropBadProbe, 1)
	// An old router's probe on its binding is answered in kind.
	if err := r.mr.SendSignal(1, nemo.EncapUDP4, nemo.Probe{Seq: 10}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	counted(t, r.mr.Drops(), tunnel.DropNotIP, 1)
}

// TestSilentBindingIsNotUsed: the home agent stops sending by a probed
// binding it has not heard from within the liveness timeout, and uses it
// again once it hears from it.
func TestSilentBindingIsNotUsed(t *testing.T) {
	r := newRig(t, nil)
	r.ha.SetLivenessTimeout(50 * time.Millisecond)
	// The Wi-Fi binding is probed once, then goes silent.
	hb, _ := nemo.Marshal(&nemo.Heartbeat{Seq: 1})
	native, _ := nemo.AppendPacket(nil, wifi6, ha6, netip.Addr{}, netip.Addr{}, 64, hb)
	r.mr.SendSignal(0, nemo.EncapIPv6, native)
	for start := time.Now(); r.mr.Heard(0).IsZero(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("probe not answered")
		}
	}
	time.Sleep(80 * time.Millisecond)
	down := netsim.UDP6(cn, lan, 7, 4000, 10, 'l')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "downlink while Wi-Fi is silent")
	if w, c := r.ha.Traffic(hoa, bidWifi), r.ha.Traffic(hoa, bidCell); w.TxPackets != 0 || c.TxPackets != 1 {
		t.Fatalf("silent Wi-Fi binding used: Wi-Fi %+v, cellular %+v", w, c)
	}
	r.ha.SetLivenessTimeout(time.Hour)
	down = netsim.UDP6(cn, lan, 7, 4000, 10, 'm')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "downlink after the timeout grew")
	if w := r.ha.Traffic(hoa, bidWifi); w.TxPackets != 1 {
		t.Fatalf("Wi-Fi binding not used again: %+v", w)
	}
}

// TestSignallingReachesTheDaemons: Mobility Header packets in UDP go to
// the daemon on both ends, not into the devices; the home agent's daemon
// answers on the data plane's UDP socket, through the NAT's mapping.
func TestSignallingReachesTheDaemons(t *testing.T) {
	r := newRig(t, nil)
	ba := signal(t, ha6, hoa)
	if _, err := r.haUDP.Send(batchOf(ba, r.cellOuter), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-r.mrSig:
		if !bytes.Equal(got, ba) {
			t.Fatal("the router's daemon got other bytes than were sent")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("signalling did not reach the router's daemon")
	}
	quiet(t, r.mrTUN, ba, "signalling")
	st := r.mr.Status()
	if st.Backend != "userspace-tun" || st.Device != "nemo0" || len(st.Drops) == 0 {
		t.Fatalf("router data plane status: %+v", st)
	}
}

func batchOf(p []byte, to netip.AddrPort) *netio.Batch {
	b := netio.NewBatch(1, len(p))
	b.N[0] = copy(b.Bufs[0], p)
	b.Addr[0] = to
	return b
}

// TestFlowCountersSurviveReregistration: every refresh hands the home
// agent a new flow table; the packets its entries steered, and the
// duplicates suppressed, keep counting by FID across it and across a
// time without bindings.
func TestFlowCountersSurviveReregistration(t *testing.T) {
	const uci = routerUCI + `
config policy 'voice'
	list use 'cell'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
`
	r := newRig(t, compile(t, uci))
	for i := range 3 {
		p := netsim.UDP6(cn, lan, 5060, 4000, 20, byte('a'+i))
		r.haTUN.Inject(p)
		expect(t, r.mrTUN, p, "SIP down")
	}
	count := func() uint64 {
		for _, f := range r.ha.Flows(hoa).Flows {
			if f.FID == 1 {
				return f.Packets
			}
		}
		return 0
	}
	if n := count(); n != 3 {
		t.Fatalf("SIP entry counted %d packets, want 3", n)
	}
	r.register(compile(t, uci), r.bindings...) // a refresh: an equal, new table
	if n := count(); n != 3 {
		t.Fatalf("after a refresh: %d packets, want 3", n)
	}
	r.ha.Update(hoa, nil, nil, nil) // every binding gone
	r.register(compile(t, uci), r.bindings...)
	if n := count(); n != 3 {
		t.Fatalf("after registering again: %d packets, want 3", n)
	}
	p := netsim.UDP6(cn, lan, 5060, 4000, 20, 'z')
	r.haTUN.Inject(p)
	expect(t, r.mrTUN, p, "SIP down after")
	if n := count(); n != 4 {
		t.Fatalf("%d packets, want 4", n)
	}
}
