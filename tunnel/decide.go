package tunnel

import (
	"net/netip"

	"nemod/header"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
)

// The per-packet decisions of both data planes: pure functions of a packet
// and an immutable table (the duplicate suppression of a duplicated flow
// aside, whose state the table holds), so that every verdict is tested
// without sockets. The readers and writers around them only move bytes.

// routerBinding is one usable binding of the mobile router.
type routerBinding struct {
	uplink int
	bid    uint16
	encap  nemo.Encap
	coa    netip.Addr
	to     netip.AddrPort // where its packets go: the home agent
	conn   netio.Conn     // the socket they leave by
	mtu    int            // the largest inner packet it carries
	stats  *Stats
	// conn4 is the socket IPv4 packets leave by: the protocol-4 one for
	// IPv4-in-IPv6, conn itself over UDP; nil when it carries no IPv4.
	conn4 netio.Conn
}

// routerTable is what the mobile router forwards by: immutable, swapped
// whole when a binding, the prefixes or the flow table change.
type routerTable struct {
	gen      uint64
	hoa      netip.Addr
	mnps     []netip.Prefix
	bindings []*routerBinding // usable ones, by uplink
	order    []uint16         // BIDs by BID-PRI then BID: where packets no flow binding takes go
	flows    *flowState
	v4       routerV4 // the mobile network's IPv4 (ipv4.go)
}

func (t *routerTable) binding(bid uint16) *routerBinding {
	for _, b := range t.bindings {
		if b.bid == bid {
			return b
		}
	}
	return nil
}

func (t *routerTable) usable(bid uint16) bool { return t.binding(bid) != nil }

// ours reports whether a belongs to the mobile network: the home address
// or inside one of its prefixes.
// linkScoped reports whether a is an address of one link only: what the
// kernel sends there on the TUN device itself (its Multicast Listener
// Reports, from the device's own link-local address) is not the mobile
// network's traffic, and is told apart from a foreign source.
func linkScoped(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}

func (t *routerTable) ours(a netip.Addr) bool { return covers(a, []netip.Addr{t.hoa}, t.mnps) }

// fromNetwork decides where a packet from the mobile network goes: the
// bindings it is sent by, appended to out, or why it is dropped. For
// DropTooBig it also returns the MTU to tell the sender.
func (t *routerTable) fromNetwork(p []byte, out []*routerBinding) ([]*routerBinding, Drop, int) {
	if header.Version(p) == 4 {
		return t.fromNetwork4(p, out)
	}
	if header.Version(p) != 6 {
		return out, DropNotIP, 0
	}
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return out, DropMalformed, 0
	}
	if linkScoped(ip.Dst()) {
		return out, DropLinkScope, 0
	}
	if !t.ours(ip.Src()) {
		// A host on the mobile network with an address of its own making,
		// or one spoofing another network's: never forwarded, in the
		// tunnel or out of an uplink.
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
		if len(ip) > b.mtu {
			if mtu == 0 || b.mtu < mtu {
				mtu = b.mtu
			}
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return out, DropTooBig, mtu
	}
	return out, Forward, 0
}

// steer asks the flow table which bindings a packet from the mobile
// network goes through (buf is the caller's, so that the answer needs no
// allocation), or why it goes through none.
func (t *routerTable) steer(flow *header.Flow, buf []uint16) ([]uint16, Drop) {
	targets, e, direct := t.flows.table.Targets(flow, policy.FromMN, t.usable, t.order, buf)
	if e != nil {
		t.flows.count(e)
	}
	if direct {
		// Local breakout is the kernel's (policy rules ahead of the
		// tunnel's); one that got here anyway is not tunnelled.
		return nil, DropDirect
	}
	if len(targets) == 0 {
		return nil, DropNoBinding
	}
	return targets, Forward
}

// toNetwork decides whether a packet the home agent tunnelled to the
// router goes into the mobile network; dup reports the second copy of a
// duplicated flow's packet, which is suppressed.
func (t *routerTable) toNetwork(p []byte, now int64) (d Drop, dup bool) {
	if header.Version(p) == 4 {
		return t.toNetwork4(p, now)
	}
	if header.Version(p) != 6 {
		return DropNotIP, false
	}
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return DropMalformed, false
	}
	if !t.ours(ip.Dst()) {
		return DropNotForUs, false
	}
	return Forward, t.flows.duplicate(ip, policy.ToMN, t.usable, now)
}

// agentBinding is one binding of a mobile router at the home agent.
type agentBinding struct {
	bid   uint16
	encap nemo.Encap
	outer netip.AddrPort // where to send: the care-of address, or its NAT's address and port
	hoa   netip.Addr     // the router's home address, where probes in UDP go
	// answers: the router answers Heartbeat requests, so the home agent
	// may probe the binding itself (nemo.CapHeartbeat).
	answers bool
	stats   *Stats
	// nativeUntil (Unix ns): the binding just moved from IPv6-in-IPv6 to
	// UDP over IPv6 on the same care-of address (the negotiation of
	// offload, binding/offer.go), and until then the native packets the
	// router sent before it learned of the change are still taken.
	nativeUntil int64
	// src is the address to send from, inst its instance, in a cluster
	// (cluster.go); zero and nil otherwise.
	src  netip.Addr
	inst *instanceState
}

// alive reports whether the binding may carry traffic: not if the home
// agent's own probes found it dead and nothing came through it since, and
// a probed one only if something came through it lately.
func (b *agentBinding) alive(now int64, timeout int64) bool {
	last := b.stats.lastRx.Load()
	if d := b.stats.dead.Load(); d != 0 && last < d {
		return false
	}
	return !b.stats.Probed.Load() || now-last < timeout
}

// routerView is what a mobile router's registration allows: immutable,
// swapped whole.
type routerView struct {
	hoa      netip.Addr
	prefixes []netip.Prefix
	bindings []*agentBinding // by BID
	order    []uint16        // BIDs by BID-PRI, then BID: the fallback for unmatched packets
	flows    *flowState
	// announced: its routes are installed (always, but for a cluster's
	// instance owned elsewhere: cluster.go).
	announced bool
}

func (v *routerView) binding(bid uint16) *agentBinding {
	for _, b := range v.bindings {
		if b.bid == bid {
			return b
		}
	}
	return nil
}

// bindingFrom returns the binding whose outer address a tunnelled packet
// came from: the address for IPv6-in-IPv6, address and port over UDP.
func (v *routerView) bindingFrom(outer netip.AddrPort, e nemo.Encap) *agentBinding {
	for _, b := range v.bindings {
		if b.encap != e {
			continue
		}
		if (e == nemo.EncapIPv6 && b.outer.Addr() == outer.Addr()) || b.outer == outer {
			return b
		}
	}
	return nil
}

// switchedFrom returns the UDP/IPv6 binding a native packet from outer
// belongs to while its move from IPv6-in-IPv6 is fresh (nativeUntil):
// the outer source is still the registered care-of address, so this
// admits nothing the binding did not allow a moment before.
func (v *routerView) switchedFrom(outer netip.AddrPort, e nemo.Encap, now int64) *agentBinding {
	if e != nemo.EncapIPv6 {
		return nil
	}
	for _, b := range v.bindings {
		if b.encap == nemo.EncapUDP6 && b.outer.Addr() == outer.Addr() && now < b.nativeUntil {
			return b
		}
	}
	return nil
}

func (v *routerView) covers(a netip.Addr) bool {
	return a == v.hoa || covers(a, nil, v.prefixes)
}

// agentTable finds the mobile router an address belongs to.
type agentTable = prefixTable[*routerSlot]

// towardsRouter decides which bindings a packet for a mobile network is
// sent by, or why it is dropped; for DropTooBig it also returns the MTU to
// tell the sender. mtu is the largest packet the tunnels carry, and
// liveness the time after which a probed binding that was not heard from
// is not used.
func towardsRouter(p []byte, table *agentTable, mtu int, liveness int64, now int64, out []*agentBinding) ([]*agentBinding, Drop, int) {
	if header.Version(p) == 4 {
		return towardsRouter4(p, table, mtu, liveness, now, out)
	}
	if header.Version(p) != 6 {
		return out, DropNotIP, 0
	}
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return out, DropMalformed, 0
	}
	dst := ip.Dst()
	if linkScoped(dst) {
		return out, DropLinkScope, 0
	}
	s, ok := table.lookup(dst)
	if !ok {
		return out, DropNoRoute, 0
	}
	v := s.view.Load()
	if v == nil || !v.covers(dst) {
		return out, DropNoBinding, 0
	}
	if len(ip) > mtu {
		return out, DropTooBig, mtu
	}
	// The router's flow bindings choose the binding(s); without a match,
	// the first usable binding by BID-PRI (RFC 6089 §5.1.1).
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
	} else {
		for _, bid := range v.order {
			if usable(bid) {
				targets = append(tbuf[:0], bid)
				break
			}
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

// fromRouter decides whether a decapsulated packet goes on towards the
// Internet: only if the router its source belongs to registered the
// care-of address it came through (RFC 3963 §6.4). It returns the binding
// it came by, to count it on; dup reports the second copy of a
// duplicated flow's packet, which is suppressed.
func fromRouter(p []byte, outer netip.AddrPort, e nemo.Encap, table *agentTable, now int64) (b *agentBinding, d Drop, dup bool) {
	if header.Version(p) == 4 {
		return fromRouter4(p, outer, e, table, now)
	}
	if header.Version(p) != 6 {
		return nil, DropNotIP, false
	}
	ip, err := header.ParseIPv6(p)
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
	if b = v.bindingFrom(outer, e); b == nil {
		if b = v.switchedFrom(outer, e, now); b == nil {
			return nil, DropBadOuter, false
		}
	}
	if !v.covers(src) {
		return nil, DropBadSource, false
	}
	return b, Forward, v.flows.duplicate(ip, policy.FromMN, func(bid uint16) bool { return v.binding(bid) != nil }, now)
}

// isSignalling reports whether a UDP payload is an IPv6 packet to addr
// carrying a Mobility Header, possibly behind extension headers.
func isSignalling(p []byte, addr netip.Addr) bool {
	ip, err := header.ParseIPv6(p)
	if err != nil || ip.Dst() != addr {
		return false
	}
	switch ip.NextHeader() {
	case header.ProtoMH, header.ProtoDstOpts, header.ProtoRouting, header.ProtoHopByHop:
		return true
	}
	return false
}

// isProbe reports whether a UDP payload is a liveness probe or its answer
// rather than an IP packet (its first nibble is 0).
func isProbe(p []byte) bool { return len(p) > 0 && header.Version(p) == 0 }
