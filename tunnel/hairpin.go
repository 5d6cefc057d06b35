package tunnel

import (
	"net/netip"

	"nemod/header"
	"nemod/nemo"
)

// Traffic between two mobile networks of one home agent: a packet out of
// one router's tunnel whose destination is another registered router's
// goes straight into that router's tunnel, by that router's flow bindings
// (towardsRouter), instead of into the TUN device and back out of it
// through the kernel. The sending router's policy chose the tunnel it came
// through, and fromRouter checked it, as for any packet. IPv4 between two
// mobile networks (RFC 5555) takes the same way.

// tunnelOut is one goroutine's way into the routers' tunnels: the TUN
// reader's, and each tunnel reader's for hairpinned packets.
type tunnelOut struct {
	udp, raw, raw4 *sender
	frag           fragmenter
	w              *tunWriter // ICMP errors (too big) go back through the kernel
	targets        []*agentBinding
	ptb            []byte
	// probes, when set, watches each binding a packet went by
	// (liveness.go): the TUN reader's; the hairpin's senders leave the
	// probing to it.
	probes *prober
}

func (h *HA) newTunnelOut(w *tunWriter) *tunnelOut {
	return &tunnelOut{udp: newSender(h.udp, true, 64, &h.drops), raw: newSender(h.raw, false, senderBatch(nemo.EncapIPv6, h.tun), &h.drops),
		raw4: newSender(h.raw4, false, 64, &h.drops), w: w,
		targets: make([]*agentBinding, 0, 8), ptb: make([]byte, 0, header.ICMPv6MinMTU)}
}

func (o *tunnelOut) flush() {
	o.udp.flush()
	o.raw.flush()
	o.raw4.flush()
}

// send queues p into the tunnel of each target binding o.targets holds:
// IPv6 or IPv4 in IPv6 on native paths, else in UDP; an IPv4 packet too
// big for the tunnel (DF clear: towardsRouter lets no other through) in
// fragments.
func (h *HA) send(o *tunnelOut, p []byte, now int64) {
	v4 := header.Version(p) == 4
	for _, b := range o.targets {
		if b.onStandby() {
			// Another member of the cluster owns the router's instance.
			h.drops.Add(DropStandby)
			return
		}
		b.stats.sentPacket(p, now)
		if o.probes != nil {
			o.probes.watch(b, now)
		}
		switch {
		case b.encap == nemo.EncapIPv6 && v4:
			o.frag.add(o.raw4, p, h.cfg.MTU, b.outer, b.src)
		case b.encap == nemo.EncapIPv6:
			o.raw.add(p, b.outer, b.src)
		case b.encap == nemo.EncapUDP6:
			o.frag.add(o.udp, p, h.cfg.MTU, b.outer, h.srcFor(b, true))
		default:
			o.frag.add(o.udp, p, h.cfg.MTU, b.outer, h.srcFor(b, false))
		}
	}
}

// hairpin sends p on when its destination belongs to a mobile router of
// this home agent, and reports whether it did (or dropped it: a router
// with no usable binding for it); false leaves p to the kernel.
func (h *HA) hairpin(p []byte, table *agentTable, now int64, o *tunnelOut) bool {
	var dst netip.Addr
	switch header.Version(p) {
	case 6:
		ip, err := header.ParseIPv6(p)
		if err != nil {
			return false
		}
		dst = ip.Dst()
	case 4:
		ip, err := header.ParseIPv4(p)
		if err != nil {
			return false
		}
		dst = ip.Dst()
	default:
		return false
	}
	if _, ok := table.lookup(dst); !ok {
		return false
	}
	var d Drop
	var mtu int
	o.targets, d, mtu = towardsRouter(p, table, h.cfg.MTU, h.liveness.Load(), now, o.targets[:0])
	if d == Forward && len(o.targets) > 0 && o.targets[0].onStandby() {
		// Another member of the cluster forwards for that router: the
		// kernel routes the packet there.
		return false
	}
	if d != Forward {
		h.drops.AddPacket(d, p)
		h.fleet.hpDropped.Add(1)
		if d == DropTooBig {
			if e := tooBig(o.ptb[:0], p, mtu, h.cfg.Address, h.cfg.AddressV4); e != nil {
				o.w.add(e)
			}
		}
		return true
	}
	h.send(o, p, now)
	h.fleet.hpPackets.Add(1)
	h.fleet.hpOctets.Add(uint64(len(p)))
	return true
}
