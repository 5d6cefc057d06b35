package tunnel

import (
	"nemod/header"
	"nemod/nemo"
)

// Traffic between two mobile networks of one home agent (charter A.5):
// a packet out of one router's tunnel whose destination is another
// registered router's goes straight into that router's tunnel, by that
// router's flow bindings (towardsRouter), instead of into the TUN device
// and back out of it through the kernel. The sending router's policy chose
// the tunnel it came through, and fromRouter checked it, as for any packet.

// hairpinOut is a reader goroutine's way into the tunnels.
type hairpinOut struct {
	udp, raw *sender
	w        *tunWriter // Packet Too Big answers go back through the kernel
	targets  []*agentBinding
	ptb      []byte
}

func (h *HA) newHairpinOut(w *tunWriter) *hairpinOut {
	return &hairpinOut{udp: newSender(h.udp, true, 64, &h.drops), raw: newSender(h.raw, false, 64, &h.drops), w: w,
		targets: make([]*agentBinding, 0, 8), ptb: make([]byte, 0, header.ICMPv6MinMTU)}
}

func (o *hairpinOut) flush() {
	o.udp.flush()
	o.raw.flush()
}

// hairpin sends p on when its destination belongs to a mobile router of
// this home agent, and reports whether it did (or dropped it: a router
// with no usable binding for it); false leaves p to the kernel.
func (h *HA) hairpin(p []byte, table *agentTable, now int64, o *hairpinOut) bool {
	ip, err := header.ParseIPv6(p)
	if err != nil {
		return false
	}
	if _, ok := table.lookup(ip.Dst()); !ok {
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
		h.drops.Add(d)
		h.fleet.hpDropped.Add(1)
		if d == DropTooBig {
			o.w.add(header.AppendPacketTooBig(o.ptb[:0], h.cfg.Address, ip, mtu))
		}
		return true
	}
	for _, b := range o.targets {
		b.stats.sent(len(p), now)
		switch b.encap {
		case nemo.EncapIPv6:
			o.raw.add(p, b.outer, b.src)
		case nemo.EncapUDP6:
			o.udp.add(p, b.outer, h.srcFor(b, true))
		default:
			o.udp.add(p, b.outer, h.srcFor(b, false))
		}
	}
	h.fleet.hpPackets.Add(1)
	h.fleet.hpOctets.Add(uint64(len(p)))
	return true
}
