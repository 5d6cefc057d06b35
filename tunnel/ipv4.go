package tunnel

import (
	"net/netip"

	"nemod/header"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
)

// IPv4 for the mobile network (RFC 5555 §4.1): the same bindings carry
// IPv4 packets as IPv6 ones, IPv4-in-IPv6 (next header 4) on native IPv6
// paths and inside UDP port 4191 otherwise, where the IP version nibble
// after the UDP header tells the two apart. The decisions mirror IPv6's;
// a packet too big for its binding is fragmented when its DF flag is
// clear and answered with ICMP "fragmentation needed" and the tunnel's
// MTU when it is set. The TTL is the kernels': each end's kernel
// decrements it once as it forwards a packet into or out of the TUN
// device, which is one router hop each, and the tunnel itself, a link,
// leaves it alone.

// routerV4 is the mobile network's IPv4 as the home agent granted it.
type routerV4 struct {
	hoa  netip.Addr     // the IPv4 home address; invalid if none
	mnps []netip.Prefix // the IPv4 mobile network prefixes
}

// ours4 reports whether a belongs to the mobile network's IPv4.
func (t *routerTable) ours4(a netip.Addr) bool {
	if t.v4.hoa.IsValid() && a == t.v4.hoa {
		return true
	}
	return covers(a, nil, t.v4.mnps)
}

// icmpSource4 is the address the router's ICMP errors come from: its IPv4
// home address, else its address on the mobile network (the first of its
// first prefix).
func (v *routerV4) icmpSource4() netip.Addr {
	if v.hoa.IsValid() {
		return v.hoa
	}
	if len(v.mnps) > 0 {
		return v.mnps[0].Masked().Addr().Next()
	}
	return netip.Addr{}
}

// fromNetwork4 is fromNetwork for an IPv4 packet. A binding it is too big
// for is still returned when the DF flag is clear: the sender fragments
// it.
func (t *routerTable) fromNetwork4(p []byte, out []*routerBinding) ([]*routerBinding, Drop, int) {
	ip, err := header.ParseIPv4(p)
	if err != nil {
		return out, DropMalformed, 0
	}
	if !t.ours4(ip.Src()) {
		// As for IPv6: a source outside the mobile network's IPv4 is never
		// forwarded, in the tunnel or out of an uplink.
		return out, DropForeignSrc, 0
	}
	flow, err := header.ParseFlow(ip)
	if err != nil {
		return out, DropMalformed, 0
	}
	var tbuf [8]uint16
	targets, d := t.steer(&flow, tbuf[:0])
	if d != Forward {
		return out, d, 0
	}
	mtu := 0
	for _, bid := range targets {
		b := t.binding(bid)
		if b.conn4 == nil {
			continue
		}
		if len(ip) > b.mtu && ip.DontFragment() {
			if mtu == 0 || b.mtu < mtu {
				mtu = b.mtu
			}
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		if mtu == 0 {
			return out, DropNoBinding, 0
		}
		return out, DropTooBig, mtu
	}
	return out, Forward, 0
}

// toNetwork4 is toNetwork for an IPv4 packet.
func (t *routerTable) toNetwork4(p []byte, now int64) (Drop, bool) {
	ip, err := header.ParseIPv4(p)
	if err != nil {
		return DropMalformed, false
	}
	if !t.ours4(ip.Dst()) {
		return DropNotForUs, false
	}
	return Forward, t.flows.duplicate(ip, policy.ToMN, t.usable, now)
}

// towardsRouter4 is towardsRouter for an IPv4 packet. The routers' IPv4
// home addresses (as /32) and prefixes are in the table and their views
// like the IPv6 ones. A packet too big with DF clear is forwarded, for the
// sender to fragment.
func towardsRouter4(p []byte, table *agentTable, mtu int, liveness int64, now int64, out []*agentBinding) ([]*agentBinding, Drop, int) {
	ip, err := header.ParseIPv4(p)
	if err != nil {
		return out, DropMalformed, 0
	}
	dst := ip.Dst()
	s, ok := table.lookup(dst)
	if !ok {
		return out, DropNoRoute, 0
	}
	v := s.view.Load()
	if v == nil || !v.covers(dst) {
		return out, DropNoBinding, 0
	}
	if len(ip) > mtu && ip.DontFragment() {
		return out, DropTooBig, mtu
	}
	usable := func(bid uint16) bool {
		b := v.binding(bid)
		return b != nil && b.alive(now, liveness)
	}
	var tbuf [8]uint16
	var targets []uint16
	if flow, err := header.ParseFlow(ip); err == nil {
		var e *policy.Entry
		targets, e, _ = v.flows.table.Targets(&flow, policy.ToMN, usable, v.order, tbuf[:0])
		if e != nil {
			v.flows.count(e)
		}
	}
	if len(targets) == 0 {
		return out, DropNoBinding, 0
	}
	for _, bid := range targets {
		out = append(out, v.binding(bid))
	}
	return out, Forward, 0
}

// fromRouter4 is fromRouter for an IPv4 packet: forwarded only if its
// outer source is a registered care-of address of the router whose IPv4
// home address or prefix its inner source is.
func fromRouter4(p []byte, outer netip.AddrPort, e nemo.Encap, table *agentTable, now int64) (*agentBinding, Drop, bool) {
	ip, err := header.ParseIPv4(p)
	if err != nil {
		return nil, DropMalformed, false
	}
	src := ip.Src()
	s, ok := table.lookup(src)
	if !ok {
		return nil, DropBadSource, false
	}
	v := s.view.Load()
	if v == nil {
		return nil, DropBadOuter, false
	}
	b := v.bindingFrom(outer, e)
	if b == nil {
		return nil, DropBadOuter, false
	}
	if !v.covers(src) {
		return nil, DropBadSource, false
	}
	return b, Forward, v.flows.duplicate(ip, policy.FromMN, func(bid uint16) bool { return v.binding(bid) != nil }, now)
}

// AddPacket counts packet p dropped for reason d, among the IPv4 drops
// too when it is IPv4.
func (c *Drops) AddPacket(d Drop, p []byte) {
	c.Add(d)
	if d != Forward && d < numDrops && header.Version(p) == 4 {
		c.v4[d].Add(1)
	}
}

// Count4 is the number of IPv4 packets dropped for reason d.
func (c *Drops) Count4(d Drop) uint64 {
	if d >= numDrops {
		return 0
	}
	return c.v4[d].Load()
}

// View4 returns the IPv4 drops by reason, zeros included.
func (c *Drops) View4() map[string]uint64 {
	m := make(map[string]uint64, numDrops-1)
	for d := DropNotIP; d < numDrops; d++ {
		m[d.String()] = c.v4[d].Load()
	}
	return m
}

// sentPacket counts p going into the tunnel at now.
func (s *Stats) sentPacket(p []byte, now int64) {
	s.sent(len(p), now)
	if header.Version(p) == 4 {
		s.TxPacketsV4.Add(1)
	}
}

// receivedPacket counts p coming out of the tunnel at now.
func (s *Stats) receivedPacket(p []byte, now int64) {
	s.received(len(p), now)
	if header.Version(p) == 4 {
		s.RxPacketsV4.Add(1)
	}
}

// connFor is the socket packet p leaves a binding by; nil if it cannot.
func (b *routerBinding) connFor(p []byte) netio.Conn {
	if header.Version(p) == 4 {
		return b.conn4
	}
	return b.conn
}

// tooBig is the ICMP error answering a packet too big for the tunnel:
// Packet Too Big from the home address for IPv6, fragmentation needed
// from src4 for IPv4 (none without an IPv4 source).
func tooBig(b []byte, p []byte, mtu int, src6, src4 netip.Addr) []byte {
	if header.Version(p) == 4 {
		if !src4.IsValid() {
			return nil
		}
		return header.AppendFragmentationNeeded(b, src4, header.IPv4(p), mtu)
	}
	return header.AppendPacketTooBig(b, src6, header.IPv6(p), mtu)
}

// fragmenter splits IPv4 packets too big for their binding; one goroutine
// owns one.
type fragmenter struct{ buf []byte }

// add queues p for to through s, in fragments of at most mtu octets when
// it is longer (an IPv4 packet whose DF flag is clear: the decisions let
// no other through).
func (f *fragmenter) add(s *sender, p []byte, mtu int, to netip.AddrPort, src netip.Addr) {
	if len(p) <= mtu || header.Version(p) != 4 {
		s.add(p, to, src)
		return
	}
	if f.buf == nil {
		f.buf = make([]byte, 0, maxPacket)
	}
	if !header.AppendFragmentsIPv4(f.buf, header.IPv4(p), mtu, func(frag []byte) { s.add(frag, to, src) }) {
		s.drops.AddPacket(DropTooBig, p)
	}
}

// SetIPv4 implements RouterPlane: the mobile network's IPv4 is forwarded
// from now on, routed into the TUN device, and broken out where direct
// rules say.
func (m *MR) SetIPv4(hoa netip.Addr, prefixes []netip.Prefix) error {
	m.v4 = routerV4{hoa: hoa, mnps: append([]netip.Prefix(nil), prefixes...)}
	m.rebuild()
	if err := m.route4(); err != nil {
		return err
	}
	if (hoa.IsValid() || len(prefixes) > 0) && !m.sys.Forwarding4() {
		m.log.Warn("IPv4 forwarding is off: the mobile network's IPv4 will not reach the tunnel (sysctl net.ipv4.ip_forward=1)")
	}
	return m.SetDirect(m.flows.table)
}

// route4 routes the mobile network's IPv4 into the TUN device.
func (m *MR) route4() error {
	return m.sys.RouteNetwork4(NetworkRoutes4{Device: m.tun.Name(), HoA: m.v4.hoa, MNPs: m.v4.mnps, LANs: m.cfg.LANs,
		Table: m.cfg.Table, Priority: m.cfg.RulePriority, NoAddress: m.cfg.NoAddress})
}

// NetworkRoutes4 is the routing of the mobile network's IPv4 into the
// tunnel: the home address on the device, whatever the prefixes send and
// whatever arrives on the LANs for elsewhere into it (a foreign source is
// then dropped by the data plane, never leaked out of an uplink).
type NetworkRoutes4 struct {
	Device string
	HoA    netip.Addr // invalid if none
	MNPs   []netip.Prefix
	LANs   []string
	// Table and Priority are the IPv6 routing's: the IPv4 rules take the
	// same places in their own family.
	Table, Priority int
	// NoAddress: the IPv4 home address is someone else's to put on the
	// device, as NetworkRoutes' home address (netifd's on OpenWrt).
	NoAddress bool
}
